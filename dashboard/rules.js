// The rule tables: qualification rules (SMTP replies, docs/qualification-rules.md) and inbound rules (bounce messages,
// docs/bounce-classification.md). Every key lists them and tries a reply or a message against the stored rules; admin
// keys also add, edit, disable, enable and delete rules. The API validates every rule (RE2 patterns, its own sample).
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api, issuePath } from './api.js';
import { ErrorNote, Loading, html, link } from './components.js';
import { FAILURE_REASONS, FAILURE_TYPES, INBOUND_RULE_KINDS, RETRY_CLASSES, date, dateSeconds, num, words } from './format.js';

const options = (o) => Object.entries(o).map(([value, label]) => ({ value, label }));
/** An empty text box is "any": the API's null. */
const orNull = (v) => (v.trim() === '' ? null : v);

/**
 * Each table: its API, the form's fields (in order; `wide` spans the form), how a stored rule fills the form and how
 * the form becomes the PUT body, which form field an API issue's path names, and what the filter searches.
 */
const TABLES = {
  qualification: {
    title: 'Qualification rules',
    base: '/api/qualification-rules',
    intro: 'How an SMTP reply is qualified: the first enabled rule (lowest priority first) whose every condition matches gives the failure type, reason and retry class; a reply no rule matches gets the default qualification.',
    fields: [
      { name: 'id', label: 'Id', hint: 'a-z, 0-9, "-" and "."; a rule is never renamed', input: 'text', required: true },
      { name: 'priority', label: 'Priority', hint: 'lower runs first', input: 'number', required: true },
      { name: 'provider', label: 'Provider', hint: 'whose wording: gmail, microsoft, … or generic', input: 'text', required: true },
      { name: 'code', label: 'Reply code', hint: '550, 5xx, 4xx, or 0 for no reply; empty: any', input: 'text' },
      { name: 'enhancedCode', label: 'Enhanced code', hint: '5.1.1, or a prefix such as 5.7.; empty: any', input: 'text' },
      { name: 'domain', label: 'Recipient domain pattern', hint: 'RE2 syntax, case-insensitive; empty: any domain', input: 'text', code: true },
      { name: 'sampleDomain', label: 'Sample recipient domain', hint: 'needed with a domain pattern', input: 'text' },
      { name: 'pattern', label: 'Pattern on the reply text', hint: 'RE2 syntax (no look-around, no back-references), case-insensitive, on the text without its codes; empty: any', input: 'textarea', wide: true, code: true },
      { name: 'type', label: 'Failure type', input: 'select', options: options(FAILURE_TYPES) },
      { name: 'reason', label: 'Failure reason', input: 'select', options: options(FAILURE_REASONS) },
      { name: 'retryClass', label: 'Retry class', hint: 'hard and ignored failures are never retried: none', input: 'select', options: options(RETRY_CLASSES) },
      { name: 'sample', label: 'Sample reply', hint: 'the real reply this rule is for, codes included; the rule must match it', input: 'textarea', wide: true, required: true, code: true },
      { name: 'note', label: 'Note', hint: 'why this qualification', input: 'textarea', wide: true, required: true },
      { name: 'enabled', label: 'Enabled', input: 'checkbox' },
    ],
    blank: { id: '', priority: '', provider: '', code: '', enhancedCode: '', domain: '', pattern: '', type: 'hard', reason: 'user_unknown', retryClass: 'none', sample: '', sampleDomain: '', note: '', enabled: true },
    toForm: (r) => ({
      id: r.id,
      priority: String(r.priority),
      provider: r.provider,
      code: r.code === null ? '' : String(r.code),
      enhancedCode: r.enhancedCode ?? '',
      domain: r.domain ?? '',
      pattern: r.pattern ?? '',
      type: r.type,
      reason: r.reason,
      retryClass: r.retryClass,
      sample: r.sample,
      sampleDomain: r.sampleDomain ?? '',
      note: r.note,
      enabled: r.enabled,
    }),
    toBody: (f) => ({
      priority: f.priority === '' ? null : Number(f.priority),
      provider: f.provider.trim(),
      // "550" is a number to the API, "5xx" a class; anything else goes as typed, for the API to name it.
      code: f.code.trim() === '' ? null : /^\d+$/.test(f.code.trim()) ? Number(f.code.trim()) : f.code.trim(),
      enhancedCode: orNull(f.enhancedCode.trim()),
      domain: orNull(f.domain),
      pattern: orNull(f.pattern),
      type: f.type,
      reason: f.reason,
      retryClass: f.retryClass,
      sample: f.sample,
      ...(f.sampleDomain.trim() ? { sampleDomain: f.sampleDomain.trim() } : {}),
      note: f.note,
      enabled: f.enabled,
    }),
    fieldOf: (path) => path,
    group: (r) => r.provider,
    conditions: (r) => [
      r.code !== null && ['Code', String(r.code)],
      r.enhancedCode !== null && ['Enhanced', r.enhancedCode],
      r.pattern !== null && ['Reply', r.pattern, true],
      r.domain && ['Domain', r.domain, true],
    ].filter(Boolean),
  },
  inbound: {
    title: 'Inbound rules',
    base: '/api/inbound-rules',
    intro: 'How a message received at the bounce domain is qualified when its delivery-status fields do not say (bounces without a status code, delay warnings, auto-replies): the first enabled rule whose every pattern matches. The SMTP qualification rules qualify the replies the message quotes.',
    fields: [
      { name: 'id', label: 'Id', hint: 'a-z, 0-9, "-" and "."; a rule is never renamed', input: 'text', required: true },
      { name: 'priority', label: 'Priority', hint: 'lower runs first', input: 'number', required: true },
      { name: 'source', label: 'Source', hint: 'whose wording: qmail, exim, … or generic', input: 'text', required: true },
      { name: 'kind', label: 'Kind', input: 'select', options: options(INBOUND_RULE_KINDS) },
      { name: 'from', label: 'From pattern', hint: 'RE2 on the From header; empty: any', input: 'text', code: true },
      { name: 'subject', label: 'Subject pattern', hint: 'RE2 on the Subject; empty: any', input: 'text', code: true },
      { name: 'body', label: 'Body pattern', hint: 'RE2 (no look-around, no back-references), case-insensitive, "^" and "$" at each line, on the lines about one recipient or the whole text; empty: any', input: 'textarea', wide: true, code: true },
      { name: 'type', label: 'Failure type', input: 'select', options: options(FAILURE_TYPES) },
      { name: 'reason', label: 'Failure reason', input: 'select', options: options(FAILURE_REASONS) },
      { name: 'retryClass', label: 'Retry class', hint: 'hard and ignored failures are never retried: none', input: 'select', options: options(RETRY_CLASSES) },
      { name: 'sampleFrom', label: 'Sample From', hint: 'needed with a From pattern', input: 'text' },
      { name: 'sampleSubject', label: 'Sample Subject', hint: 'needed with a Subject pattern', input: 'text' },
      { name: 'sampleBody', label: 'Sample body', hint: 'the real text this rule is for (needed with a body pattern); the rule must match its samples', input: 'textarea', wide: true, code: true },
      { name: 'note', label: 'Note', hint: 'why this qualification', input: 'textarea', wide: true, required: true },
      { name: 'enabled', label: 'Enabled', input: 'checkbox' },
    ],
    blank: { id: '', priority: '', source: '', kind: 'bounce', from: '', subject: '', body: '', type: 'hard', reason: 'user_unknown', retryClass: 'none', sampleFrom: '', sampleSubject: '', sampleBody: '', note: '', enabled: true },
    toForm: (r) => ({
      id: r.id,
      priority: String(r.priority),
      source: r.source,
      kind: r.kind,
      from: r.from ?? '',
      subject: r.subject ?? '',
      body: r.body ?? '',
      type: r.type,
      reason: r.reason,
      retryClass: r.retryClass,
      sampleFrom: r.sample?.from ?? '',
      sampleSubject: r.sample?.subject ?? '',
      sampleBody: r.sample?.body ?? '',
      note: r.note,
      enabled: r.enabled,
    }),
    toBody: (f) => ({
      priority: f.priority === '' ? null : Number(f.priority),
      source: f.source.trim(),
      kind: f.kind,
      from: orNull(f.from),
      subject: orNull(f.subject),
      body: orNull(f.body),
      type: f.type,
      reason: f.reason,
      retryClass: f.retryClass,
      sample: {
        ...(f.sampleFrom.trim() ? { from: f.sampleFrom } : {}),
        ...(f.sampleSubject.trim() ? { subject: f.sampleSubject } : {}),
        ...(f.sampleBody.trim() ? { body: f.sampleBody } : {}),
      },
      note: f.note,
      enabled: f.enabled,
    }),
    fieldOf: (path) => ({ 'sample.from': 'sampleFrom', 'sample.subject': 'sampleSubject', 'sample.body': 'sampleBody' })[path] ?? path,
    group: (r) => r.source,
    conditions: (r) => [r.from !== null && ['From', r.from, true], r.subject !== null && ['Subject', r.subject, true], r.body !== null && ['Body', r.body, true]].filter(Boolean),
  },
};

/** Everything the filter box searches in a rule, lower case. */
function haystack(t, r) {
  return [
    r.id,
    t.group(r),
    r.kind,
    ...t.conditions(r).map((c) => c[1]),
    r.type,
    r.reason,
    words(r.reason),
    r.retryClass,
    r.note,
    typeof r.sample === 'string' ? r.sample : Object.values(r.sample ?? {}).join(' '),
    r.sampleDomain,
    r.enabled ? 'enabled' : 'disabled',
    r.origin === 'api' ? 'custom' : 'seed',
  ]
    .filter((v) => v !== null && v !== undefined)
    .join('\n')
    .toLowerCase();
}

/** A pattern as code; a long one (inbound body patterns run to 1,000 characters) folds behind its beginning. */
function Pattern({ text }) {
  if (text.length <= 140) return html`<code class="pattern">${text}</code>`;
  return html`<details class="pattern"><summary><code>${text.slice(0, 100)}…</code></summary><code class="pattern">${text}</code></details>`;
}

/** Failure type, reason and (for a rule or an SMTP qualification) retry class. */
function Qualification({ type, reason, retryClass }) {
  return html`<span class=${`badge failure-${type}`}>${FAILURE_TYPES[type] ?? type}</span> ${words(reason)}${retryClass
    ? html` <span class="muted small">· retry ${words(retryClass)}</span>`
    : ''}`;
}

function TableNav({ table }) {
  return html`<nav class="subnav" aria-label="Rule tables">
    <a href=${link('/rules/qualification')} aria-current=${table === 'qualification' ? 'page' : undefined}>Qualification rules (SMTP replies)</a>
    <a href=${link('/rules/inbound')} aria-current=${table === 'inbound' ? 'page' : undefined}>Inbound rules (bounce messages)</a>
  </nav>`;
}

/** One labelled input of the rule form, with its hint and the API's complaint about it. */
function Field({ f, value, error, readOnly, onChange }) {
  const id = `rule-${f.name}`;
  const described = [f.hint && `${id}-hint`, error && `${id}-error`].filter(Boolean).join(' ') || undefined;
  const common = { id, name: f.name, 'aria-describedby': described, 'aria-invalid': error ? 'true' : undefined };
  let control;
  if (f.input === 'checkbox') {
    control = html`<input type="checkbox" ...${common} checked=${value} onChange=${(e) => onChange(e.currentTarget.checked)} />`;
    return html`<div class="field check-field">
      <label>${control} ${f.label}</label>
      ${error && html`<p class="field-error" id=${`${id}-error`}>${error}</p>`}
    </div>`;
  }
  if (f.input === 'select') {
    control = html`<select ...${common} value=${value} onChange=${(e) => onChange(e.currentTarget.value)}>
      ${f.options.map((o) => html`<option value=${o.value}>${o.label}</option>`)}
    </select>`;
  } else if (f.input === 'textarea') {
    control = html`<textarea ...${common} class=${f.code ? 'code' : ''} rows="3" required=${f.required} spellcheck=${f.code ? 'false' : undefined}
      value=${value} onInput=${(e) => onChange(e.currentTarget.value)}></textarea>`;
  } else {
    control = html`<input ...${common} type=${f.input} class=${f.code ? 'code' : ''} required=${f.required} readOnly=${readOnly} autocomplete="off"
      spellcheck=${f.code ? 'false' : undefined} step=${f.input === 'number' ? '1' : undefined} value=${value} onInput=${(e) => onChange(e.currentTarget.value)} />`;
  }
  return html`<div class=${`field${f.wide ? ' wide' : ''}`}>
    <label for=${id}>${f.label}</label>
    ${control}
    ${f.hint && html`<span class="hint" id=${`${id}-hint`}>${f.hint}</span>`}
    ${error && html`<p class="field-error" id=${`${id}-error`}>${error}</p>`}
  </div>`;
}

/**
 * Adding (`editing.rule` absent) or editing a rule: a PUT of the form. A refusal shows the API's message (it names the
 * rule and the field) above the form, and each issue next to its field.
 */
function RuleForm({ t, editing, existingIds, onSaved, onCancel }) {
  const [values, setValues] = useState(() => (editing.rule ? t.toForm(editing.rule) : { ...t.blank }));
  const [error, setError] = useState(null);
  const [fieldErrors, setFieldErrors] = useState({});
  const [busy, setBusy] = useState(false);
  const heading = useRef(null);
  useEffect(() => heading.current?.focus(), []);
  const isNew = !editing.rule;
  const set = (name) => (v) => setValues((old) => ({ ...old, [name]: v }));

  const submit = async (e) => {
    e.preventDefault();
    setError(null);
    setFieldErrors({});
    const id = values.id.trim();
    // A PUT of an existing id replaces that rule: adding must not do it by accident.
    if (isNew && existingIds.has(id)) {
      setFieldErrors({ id: `a rule "${id}" exists: use its Edit button to change it` });
      setError(new Error(`Not saved: a rule "${id}" exists.`));
      return;
    }
    setBusy(true);
    try {
      const saved = await api('PUT', `${t.base}/${encodeURIComponent(id)}`, t.toBody(values));
      onSaved(saved, isNew);
    } catch (err) {
      setError(err);
      const byField = {};
      for (const issue of err.body?.issues ?? []) {
        const path = issuePath(issue);
        // The id in the URL is checked on its own (a plain 400 "invalid request" without a path).
        const field = path === '' && err.body?.error === 'invalid request' ? 'id' : t.fieldOf(path);
        if (t.fields.some((f) => f.name === field)) byField[field] = byField[field] ? `${byField[field]}; ${issue.message}` : issue.message;
      }
      setFieldErrors(byField);
    } finally {
      setBusy(false);
    }
  };
  const title = isNew ? 'Add a rule' : `Edit rule ${editing.rule.id}`;
  return html`<section class="rule-editor" aria-labelledby="rule-form-h">
    <h3 id="rule-form-h" tabindex="-1" ref=${heading}>${title}</h3>
    ${!isNew && editing.rule.origin === 'seed' && html`<p class="muted small">A seed rule saved here becomes custom: newer seed files no longer change it.</p>`}
    <div id="rule-form-error"><${ErrorNote} error=${error} /></div>
    <form class="rule-form" aria-labelledby="rule-form-h" aria-describedby="rule-form-error" onSubmit=${submit}>
      ${t.fields.map((f) => html`<${Field} f=${f} value=${values[f.name]} error=${fieldErrors[f.name]} readOnly=${f.name === 'id' && !isNew} onChange=${set(f.name)} />`)}
      <div class="field wide buttons">
        <button type="submit" disabled=${busy}>${busy ? 'Saving…' : isNew ? 'Add rule' : 'Save rule'}</button>
        <button type="button" class="secondary" onClick=${onCancel}>Cancel</button>
      </div>
    </form>
  </section>`;
}

/** Qualifies one SMTP reply with the stored rules (POST /api/qualification-rules/test). */
function TryReply({ onShow }) {
  const [answer, setAnswer] = useState(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    const form = e.currentTarget;
    const domain = form.elements.domain.value.trim();
    setBusy(true);
    setError(null);
    try {
      setAnswer(await api('POST', '/api/qualification-rules/test', { reply: form.elements.reply.value, ...(domain ? { domain } : {}) }));
    } catch (err) {
      setAnswer(null);
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return html`<section aria-labelledby="try-h">
    <h2 id="try-h">Try a reply</h2>
    <form class="try-form" aria-labelledby="try-h" onSubmit=${submit}>
      <div class="field wide"><label for="try-reply">SMTP reply</label>
        <textarea id="try-reply" name="reply" class="code" rows="2" required spellcheck="false" aria-describedby="try-reply-hint"
          placeholder="550 5.1.1 <ada@example.com>: Recipient address rejected: User unknown"></textarea>
        <span class="hint" id="try-reply-hint">code, enhanced code and text, as the server wrote it; a multi-line reply keeps its lines</span></div>
      <div class="field"><label for="try-domain">Recipient domain (optional)</label><input id="try-domain" name="domain" type="text" autocomplete="off" placeholder="example.com" /></div>
      <div class="field action"><button type="submit" disabled=${busy}>${busy ? 'Trying…' : 'Try the reply'}</button></div>
    </form>
    <${ErrorNote} error=${error} />
    ${answer && html`<dl class="facts try-result" aria-label="Result of the try" data-testid="try-result">
      <div><dt>Matched rule</dt><dd>${answer.matched
        ? html`<code data-testid="try-rule">${answer.ruleId}</code> <button type="button" class="secondary small" onClick=${() => onShow(answer.ruleId)}>Show in the list</button>`
        : html`<code data-testid="try-rule">${answer.ruleId}</code> <span class="muted">(no rule matched: the default qualification)</span>`}</dd></div>
      <div><dt>Qualification</dt><dd data-testid="try-qualification"><${Qualification} ...${answer.qualification} /></dd></div>
      <div><dt>Reply read as</dt><dd>code ${answer.reply.code}, enhanced code ${answer.reply.enhancedCode ?? 'none'}${answer.domain ? `, to ${answer.domain}` : ''}</dd></div>
      <div><dt>Evaluation time</dt><dd data-testid="try-time">${answer.evaluationMs} ms over ${num(answer.rulesEvaluated)} enabled rules</dd></div>
    </dl>`}
  </section>`;
}

/** A test message from its parts: the headers the inbound rules look at, then the body (CRLF, as received). */
function composeMessage(from, subject, body) {
  const oneLine = (v) => v.replace(/[\r\n]+/g, ' ').trim();
  return [
    ...(oneLine(from) ? [`From: ${oneLine(from)}`] : []),
    ...(oneLine(subject) ? [`Subject: ${oneLine(subject)}`] : []),
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    '',
    body.replace(/\r?\n/g, '\r\n'),
  ].join('\r\n');
}

/** Classifies one message with the stored rules (POST /api/inbound-rules/test), given by its parts or raw. */
function TryMessage({ onShow }) {
  const [mode, setMode] = useState('parts');
  const [answer, setAnswer] = useState(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    const f = e.currentTarget.elements;
    const message = mode === 'raw' ? f.raw.value : composeMessage(f.from.value, f.subject.value, f.body.value);
    setBusy(true);
    setError(null);
    try {
      setAnswer(await api('POST', '/api/inbound-rules/test', { message }));
    } catch (err) {
      setAnswer(null);
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const c = answer?.classification;
  return html`<section aria-labelledby="try-h">
    <h2 id="try-h">Try a message</h2>
    <form class="try-form" aria-labelledby="try-h" onSubmit=${submit}>
      <fieldset class="wide">
        <legend>The message as</legend>
        <label class="check"><input type="radio" name="mode" value="parts" checked=${mode === 'parts'} onChange=${() => setMode('parts')} /> From, subject and body</label>
        <label class="check"><input type="radio" name="mode" value="raw" checked=${mode === 'raw'} onChange=${() => setMode('raw')} /> The raw message (headers, a blank line, the body)</label>
      </fieldset>
      ${mode === 'parts'
        ? html`<div class="field"><label for="try-from">From</label><input id="try-from" name="from" type="text" autocomplete="off" placeholder="MAILER-DAEMON@mx.example.org" /></div>
            <div class="field"><label for="try-subject">Subject</label><input id="try-subject" name="subject" type="text" autocomplete="off" placeholder="failure notice" /></div>
            <div class="field wide"><label for="try-body">Body</label><textarea id="try-body" name="body" class="code" rows="5" required spellcheck="false"
              placeholder=${'<ada@example.com>:\nSorry, no mailbox here by that name. (#5.1.1)'}></textarea></div>`
        : html`<div class="field wide"><label for="try-raw">Raw message</label><textarea id="try-raw" name="raw" class="code" rows="10" required spellcheck="false"></textarea></div>`}
      <div class="field action"><button type="submit" disabled=${busy}>${busy ? 'Trying…' : 'Try the message'}</button></div>
    </form>
    <${ErrorNote} error=${error} />
    ${answer && html`<div class="try-result" data-testid="try-result">
      <dl class="facts">
        <div><dt>Kind of message</dt><dd data-testid="try-kind">${words(c.kind)}</dd></div>
        <div><dt>Evaluation time</dt><dd data-testid="try-time">${answer.evaluationMs} ms (parsing and classifying), ${num(answer.rulesEvaluated)} enabled inbound rules</dd></div>
      </dl>
      ${c.recipients.length === 0
        ? html`<p>Nothing about a recipient was found in it.</p>`
        : html`<div class="table-wrap"><table class="data" aria-label="What the message says per recipient">
            <thead><tr><th scope="col">Recipient</th><th scope="col">Qualification</th><th scope="col">Status</th><th scope="col">Reply</th><th scope="col">Decided by</th></tr></thead>
            <tbody>${c.recipients.map((r) => {
              const inboundRule = r.rule.startsWith('inbound-rule:') ? r.rule.slice('inbound-rule:'.length) : null;
              return html`<tr>
                <td>${r.recipient ?? '—'}</td>
                <td>${r.reason ? html`<${Qualification} type=${r.type} reason=${r.reason} />` : words(r.type)}</td>
                <td>${r.status ?? '—'}${r.replyCode ? ` (${r.replyCode})` : ''}</td>
                <td class="reply small">${r.diagnosticCode ?? '—'}</td>
                <td><code data-testid="try-rule">${r.rule}</code>${inboundRule && html` <button type="button" class="secondary small" onClick=${() => onShow(inboundRule)}>Show in the list</button>`}</td>
              </tr>`;
            })}</tbody></table></div>`}
    </div>`}
  </section>`;
}

export function RulesPage({ table, isAdmin }) {
  const t = TABLES[table];
  const [list, setList] = useState(null);
  const [error, setError] = useState(null);
  const [filter, setFilter] = useState('');
  const [editing, setEditing] = useState(null);
  const [outcome, setOutcome] = useState(null);
  const [reload, setReload] = useState(0);
  const addButton = useRef(null);
  const wasEditing = useRef(false);
  // Once the form closes (saved, cancelled), the keyboard goes back to where it was opened from, not to the page's top.
  useEffect(() => {
    if (wasEditing.current && !editing) addButton.current?.focus();
    wasEditing.current = Boolean(editing);
  }, [editing]);
  useEffect(() => {
    let gone = false;
    api('GET', t.base).then((b) => !gone && setList(b), (e) => !gone && setError(e));
    return () => {
      gone = true;
    };
  }, [t, reload]);
  const rules = list?.rules ?? [];
  const shown = useMemo(() => {
    const terms = filter.toLowerCase().split(/\s+/).filter(Boolean);
    if (terms.length === 0) return rules;
    return rules.filter((r) => {
      const text = haystack(t, r);
      return terms.every((w) => text.includes(w));
    });
  }, [list, filter]);
  const ids = useMemo(() => new Set(rules.map((r) => r.id)), [list]);

  const change = async (what, call) => {
    setOutcome(null);
    try {
      await call();
      setOutcome({ ok: true, text: what });
    } catch (err) {
      setOutcome({ ok: false, text: `${what.replace(/\.$/, '')}: refused — ${err.message}` });
    }
    setReload((n) => n + 1);
  };
  const toggle = (r) =>
    change(`Rule ${r.id} ${r.enabled ? 'disabled' : 'enabled'}.`, () => api('PATCH', `${t.base}/${encodeURIComponent(r.id)}`, { enabled: !r.enabled }));
  const remove = (r) => {
    const seedNote = r.origin === 'seed' ? ' Newer seed files will not bring it back.' : '';
    if (!globalThis.confirm(`Delete rule ${r.id}? Workers stop using it within seconds.${seedNote}`)) return;
    if (editing?.rule?.id === r.id) setEditing(null);
    change(`Rule ${r.id} deleted.`, () => api('DELETE', `${t.base}/${encodeURIComponent(r.id)}`));
  };
  const saved = (rule, isNew) => {
    setEditing(null);
    setOutcome({ ok: true, text: `Rule ${rule.id} ${isNew ? 'added' : 'saved'}${rule.enabled ? '' : ' (disabled)'}. Workers use it within seconds.` });
    setReload((n) => n + 1);
  };
  const columns = 7 + (table === 'inbound' ? 1 : 0) + (isAdmin ? 1 : 0);

  return html`<h1 tabindex="-1">${t.title}</h1>
    <${TableNav} table=${table} />
    <p>${t.intro}</p>
    ${list && html`<p class="muted small" data-testid="rule-set-state">Seed version ${list.seedVersion} · revision ${list.revision ?? '—'} · last change ${dateSeconds(list.updatedAt)}.
      Patterns are RE2 regexes (linear time, whatever the text): no look-around and no back-references.</p>`}
    ${!isAdmin && html`<p class="muted small">Adding, editing, disabling and deleting rules needs an admin key.</p>`}
    ${table === 'qualification' ? html`<${TryReply} onShow=${setFilter} />` : html`<${TryMessage} onShow=${setFilter} />`}

    <section aria-labelledby="rules-h">
      <h2 id="rules-h">Rules</h2>
      ${isAdmin && !editing && html`<p><button type="button" ref=${addButton} onClick=${() => { setOutcome(null); setEditing({}); }}>Add a rule</button></p>`}
      ${isAdmin && editing && html`<${RuleForm} key=${editing.rule?.id ?? 'new'} t=${t} editing=${editing} existingIds=${ids} onSaved=${saved} onCancel=${() => setEditing(null)} />`}
      <p role="status" class=${outcome ? (outcome.ok ? 'ok' : 'error') : ''} data-testid="rule-outcome">${outcome?.text ?? ''}</p>
      <form class="filters" role="search" aria-label="Filter the rules" onSubmit=${(e) => e.preventDefault()}>
        <div class="field"><label for="rule-filter">Filter rules</label>
          <input id="rule-filter" type="search" autocomplete="off" value=${filter} onInput=${(e) => setFilter(e.currentTarget.value)}
            aria-describedby="rule-filter-hint" /></div>
        <span class="muted small" id="rule-filter-hint">every word must appear in the rule: id, ${table === 'inbound' ? 'source, kind' : 'provider, codes'}, patterns, qualification, note, sample, “enabled”/“disabled”, “seed”/“custom”</span>
      </form>
      <${ErrorNote} error=${error} />
      ${!list
        ? !error && html`<${Loading} what="the rules" />`
        : html`<p class="muted small" role="status" data-testid="rule-count">${shown.length === rules.length ? `${num(rules.length)} rules` : `${num(shown.length)} of ${num(rules.length)} rules`}, in evaluation order (priority, then id).</p>
          <div class="table-wrap"><table class="data rules" aria-label=${t.title}>
            <thead><tr>
              <th scope="col" class="n">Priority</th><th scope="col">Rule</th>${table === 'inbound' && html`<th scope="col">Kind</th>`}
              <th scope="col">Conditions</th><th scope="col">Qualification</th><th scope="col">State</th><th scope="col">Origin</th><th scope="col">Note</th>
              ${isAdmin && html`<th scope="col"><span class="visually-hidden">Actions</span></th>`}
            </tr></thead>
            <tbody>
              ${shown.length === 0 && html`<tr><td colspan=${columns} class="muted">No rule matches the filter.</td></tr>`}
              ${shown.map((r) => html`<tr data-rule=${r.id} class=${r.enabled ? '' : 'disabled'}>
                <td class="n">${r.priority}</td>
                <td><code>${r.id}</code><div class="muted small">${t.group(r)}</div></td>
                ${table === 'inbound' && html`<td>${INBOUND_RULE_KINDS[r.kind] ?? r.kind}</td>`}
                <td class="conditions"><ul>${t.conditions(r).map(([name, value, isPattern]) => html`<li><span class="muted">${name}</span> ${isPattern ? html`<${Pattern} text=${value} />` : html`<code>${value}</code>`}</li>`)}</ul></td>
                <td><${Qualification} type=${r.type} reason=${r.reason} retryClass=${r.retryClass} /></td>
                <td>${r.enabled ? html`<span class="badge status-sent">Enabled</span>` : html`<span class="badge status-failed">Disabled</span>`}</td>
                <td>${r.origin === 'api' ? 'Custom' : 'Seed'}<div class="muted small nowrap">${date(r.updatedAt)}</div></td>
                <td class="small"><details><summary>Read<span class="visually-hidden"> the note and sample of ${r.id}</span></summary><p>${r.note}</p>
                  <pre class="sample">${typeof r.sample === 'string' ? r.sample : Object.entries(r.sample).map(([k, v]) => `${k}: ${v}`).join('\n')}</pre>
                  ${r.sampleDomain && html`<p>to ${r.sampleDomain}</p>`}</details></td>
                ${isAdmin && html`<td><div class="rule-actions">
                  <button type="button" class="secondary small" aria-label=${`Edit rule ${r.id}`} onClick=${() => { setOutcome(null); setEditing({ rule: r }); }}>Edit</button>
                  <button type="button" class="secondary small" aria-label=${`${r.enabled ? 'Disable' : 'Enable'} rule ${r.id}`} onClick=${() => toggle(r)}>${r.enabled ? 'Disable' : 'Enable'}</button>
                  <button type="button" class="danger small" aria-label=${`Delete rule ${r.id}`} onClick=${() => remove(r)}>Delete</button>
                </div></td>`}
              </tr>`)}
            </tbody></table></div>`}
    </section>`;
}
