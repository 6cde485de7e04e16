// The New delivery form (send and admin keys): recipients from a stored list or a CSV file (uploaded with
// POST /api/lists, as any integrator would), the message with a live preview rendered by the engine for the first
// recipient (POST /api/deliveries/preview), validity, waves, local-time sending and the contact date. Creating is
// POST /api/deliveries with an Idempotency-Key, then the delivery's own page (analysis report, Confirm).
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, api, newIdempotencyKey } from './api.js';
import { ErrorNote, html, link } from './components.js';
import { date, num } from './format.js';

/** The address columns a stored list accepts (db/recipient-lists.ts): the same names, so the summary says what the upload will do. */
const ADDRESS_COLUMNS = ['email', 'address', 'email_address', 'e-mail'];
const PREVIEW_DELAY_MS = 300;
const VALIDITY_UNITS = [['m', 'minutes'], ['h', 'hours'], ['d', 'days']];

/**
 * Reads a CSV file in the browser, as a stream (a file of millions of rows is never held whole): its columns, its
 * number of rows after the header (empty lines skipped, quoted line breaks inside a row), and its first row as a
 * sample recipient. The server parses the file again on upload and is the one that decides.
 */
export async function csvSummary(file) {
  const reader = file.stream().pipeThrough(new TextDecoderStream()).getReader();
  const kept = [];
  let rows = 0;
  let record = [];
  let field = '';
  let quoted = false;
  let inQuotes = false;
  let afterQuote = false;
  let lineHasContent = false;
  let previousCr = false;
  let first = true;
  const endField = () => {
    if (kept.length < 2) record.push(quoted ? field : field.trim());
    field = '';
    quoted = false;
  };
  const endRecord = () => {
    endField();
    if (lineHasContent) {
      if (kept.length < 2) kept.push(record);
      rows++;
    }
    record = [];
    lineHasContent = false;
  };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    for (const ch of value) {
      if (first) {
        first = false;
        if (ch === '\ufeff') continue;
      }
      const keep = kept.length < 2;
      if (inQuotes) {
        if (ch === '"') {
          inQuotes = false;
          afterQuote = true;
        } else if (keep) field += ch;
        continue;
      }
      if (ch === '"') {
        lineHasContent = true;
        if (afterQuote) {
          // "" inside a quoted field: one quote.
          if (keep) field += '"';
          inQuotes = true;
          afterQuote = false;
        } else {
          field = '';
          quoted = true;
          inQuotes = true;
        }
        continue;
      }
      afterQuote = false;
      if (ch === '\n' && previousCr) {
        previousCr = false;
        continue;
      }
      previousCr = ch === '\r';
      if (ch === '\n' || ch === '\r') endRecord();
      else if (ch === ',') {
        lineHasContent = true;
        endField();
      } else {
        if (ch.trim()) lineHasContent = true;
        if (keep) field += ch;
      }
    }
  }
  if (lineHasContent || field !== '') {
    lineHasContent = true;
    endRecord();
  }
  const [header = [], firstRow] = kept;
  const addressIndex = header.findIndex((h) => ADDRESS_COLUMNS.includes(h.toLowerCase()));
  const summary = { columns: header, rows: Math.max(0, rows - 1), addressColumn: addressIndex >= 0 ? header[addressIndex] : null, sample: null, problem: null };
  if (header.length === 0) summary.problem = 'the file is empty: a header row and at least one recipient are needed';
  else if (addressIndex < 0) summary.problem = `the header row has no address column (one of: ${ADDRESS_COLUMNS.join(', ')})`;
  else if (!firstRow) summary.problem = 'the file has a header row but no recipient';
  else {
    const fields = {};
    header.forEach((h, i) => {
      if (i !== addressIndex && firstRow[i] !== undefined && firstRow[i] !== '') fields[h] = firstRow[i];
    });
    summary.sample = { email: firstRow[addressIndex] ?? '', fields };
  }
  return summary;
}

/** The form's inputs, by the API field they give: an issue's path ("from.address", "waves.size") finds its input. */
const INPUT_OF = {
  recipients: 'nd-target',
  listId: 'nd-target',
  name: 'nd-name',
  from: 'nd-from-address',
  'from.address': 'nd-from-address',
  'from.name': 'nd-from-name',
  replyTo: 'nd-reply-to',
  subject: 'nd-subject',
  html: 'nd-html',
  text: 'nd-text',
  validity: 'nd-validity',
  waves: 'nd-waves',
  localSendTime: 'nd-local-time',
  contactDate: 'nd-contact-date',
};

/** The API's issues as messages under the inputs they name (the longest known prefix of each path). */
function issuesByInput(error, fallback) {
  const out = {};
  if (!(error instanceof ApiError)) return out;
  const issues = Array.isArray(error.body?.issues) ? error.body.issues : [];
  for (const issue of issues) {
    const parts = String(issue.path ?? '').split('.');
    let input;
    for (let n = parts.length; n > 0 && !input; n--) input = INPUT_OF[parts.slice(0, n).join('.')];
    const id = input ?? fallback;
    if (id) out[id] = out[id] ? `${out[id]}; ${issue.message}` : `${issue.path ? `${issue.path}: ` : ''}${issue.message}`;
  }
  // A refusal without issues (a CSV the list upload refused) belongs to the input it came from.
  if (issues.length === 0 && fallback) out[fallback] = error.message;
  return out;
}

const browserTimeZone = () => {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  } catch {
    return 'UTC';
  }
};

const INITIAL = {
  target: 'csv',
  listId: '',
  name: '',
  fromAddress: '',
  fromName: '',
  replyTo: '',
  subject: '',
  html: '',
  text: '',
  validityValue: '5',
  validityUnit: 'd',
  waveMode: 'single',
  waveBy: 'percent',
  waveAmount: '10',
  wavePeriodMinutes: '60',
  rampInitial: '1000',
  rampGrowth: '2',
  rampPeriodHours: '24',
  rampMax: '500000',
  localTime: false,
  localTimeOfDay: '09:00',
  localTimeZone: browserTimeZone(),
  localTimeZoneField: 'timezone',
  contactDate: '',
};

function waveSpec(f) {
  if (f.waveMode === 'size') {
    return { mode: 'size', [f.waveBy]: Number(f.waveAmount), periodSeconds: Math.round(Number(f.wavePeriodMinutes) * 60) };
  }
  if (f.waveMode === 'ramp_up') {
    return { mode: 'ramp_up', initialSize: Number(f.rampInitial), growthFactor: Number(f.rampGrowth), periodSeconds: Math.round(Number(f.rampPeriodHours) * 3600), maxSize: Number(f.rampMax) };
  }
  return { mode: 'single' };
}

/** The create request (POST /api/deliveries, api/delivery-input.ts createDeliverySchema). */
function deliveryBody(f, listId) {
  const body = {
    name: f.name,
    from: f.fromName.trim() ? { address: f.fromAddress.trim(), name: f.fromName.trim() } : { address: f.fromAddress.trim() },
    subject: f.subject,
    listId,
    validity: `${f.validityValue}${f.validityUnit}`,
    waves: waveSpec(f),
  };
  if (f.replyTo.trim()) body.replyTo = f.replyTo.trim();
  if (f.html.trim()) body.html = f.html;
  if (f.text.trim()) body.text = f.text;
  if (f.localTime) body.localSendTime = { time: f.localTimeOfDay, defaultTimeZone: f.localTimeZone.trim(), timeZoneField: f.localTimeZoneField.trim() };
  if (f.contactDate) body.contactDate = new Date(f.contactDate).toISOString();
  return body;
}

/** The message rendered by the engine for the sample recipient, at most every PREVIEW_DELAY_MS while typing. */
function usePreview(input) {
  const [state, setState] = useState({ result: null, error: null, pending: false });
  const seq = useRef(0);
  const key = JSON.stringify(input);
  useEffect(() => {
    const mine = ++seq.current;
    if (!input) {
      setState({ result: null, error: null, pending: false });
      return undefined;
    }
    setState((s) => ({ ...s, pending: true }));
    const timer = setTimeout(async () => {
      try {
        const result = await api('POST', '/api/deliveries/preview', input);
        if (mine === seq.current) setState({ result, error: null, pending: false });
      } catch (error) {
        if (mine === seq.current) setState({ result: null, error, pending: false });
      }
    }, PREVIEW_DELAY_MS);
    return () => clearTimeout(timer);
  }, [key]);
  return state;
}

function Preview({ sample, sampleFrom, preview }) {
  const { result, error, pending } = preview;
  return html`<section class="preview" aria-labelledby="preview-h">
    <h2 id="preview-h">Preview</h2>
    <p class="muted small" data-testid="preview-recipient">
      ${sample
        ? html`As <strong>${sample.email}</strong> gets it (${sampleFrom}), rendered by the engine.`
        : 'No recipient chosen yet: personalised fields are empty. Choose a list or a CSV file to see the message of its first recipient.'}
    </p>
    <p role="status" class="muted small">${pending ? 'Updating the preview…' : ''}</p>
    <div role="status" data-testid="preview-error">${error && html`<p class="error template-error">Preview: ${error.message}</p>`}</div>
    ${!result && !error && !pending && html`<p class="muted">Write a subject or a body to see the message.</p>`}
    ${result &&
    html`<dl class="facts preview-facts">
        <div><dt>Subject</dt><dd data-testid="preview-subject">${result.subject || html`<span class="muted">(empty)</span>`}</dd></div>
        <div><dt>Fields the message uses</dt><dd>${result.fields.length ? result.fields.join(', ') : 'none'}</dd></div>
      </dl>
      ${result.missingFields.length > 0 &&
      html`<p class="notice" role="note" data-testid="preview-missing">This recipient has no ${result.missingFields.join(', ')}: the analysis excludes recipients without a field the message uses.</p>`}
      ${result.html !== null &&
      html`<h3>HTML part</h3>
        <iframe class="preview-frame" title=${`HTML part as ${sample ? sample.email : 'a recipient without fields'} gets it`} sandbox="" srcdoc=${result.html}></iframe>
        <p class="muted small">Shown without scripts, and without the styles and remote images the dashboard's security policy keeps out: send a proof (on the delivery's page) to see it in a mail client.</p>`}
      ${result.text !== null && html`<h3>Text part</h3><pre class="preview-text" data-testid="preview-text">${result.text}</pre>`}`}
  </section>`;
}

export function NewDeliveryPage({ canSend, scopes }) {
  const crumbs = html`<nav aria-label="Breadcrumb" class="crumbs"><a href=${link('/deliveries')}>Deliveries</a> › <span>New delivery</span></nav>`;
  if (!canSend) {
    return html`${crumbs}<h1 tabindex="-1">New delivery</h1>
      <p data-testid="no-send-scope">Creating a delivery needs a key with the <code>send</code> scope; this session's key has ${scopes.join(', ')}.</p>`;
  }
  return html`${crumbs}<h1 tabindex="-1">New delivery</h1><${NewDeliveryForm} />`;
}

function NewDeliveryForm() {
  const [f, setF] = useState(INITIAL);
  const [lists, setLists] = useState(null);
  const [listDetail, setListDetail] = useState(null);
  const [file, setFile] = useState(null);
  const [csv, setCsv] = useState(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const [fieldErrors, setFieldErrors] = useState({});
  // One Idempotency-Key per submission of the same content: a double click or a retry after a lost answer creates one
  // delivery; any change to the form makes the next submission a new request (a new key).
  const submissionKey = useRef(null);
  // The list a CSV file became, so that a submission refused for another field does not upload the file again.
  const uploaded = useRef(null);
  // Set at once on submission (state would only change at the next render): the second click of a double click sends nothing.
  const inFlight = useRef(false);

  const set = (name) => (e) => {
    const t = e.currentTarget;
    const value = t.type === 'checkbox' ? t.checked : t.value;
    submissionKey.current = null;
    setF((old) => ({ ...old, [name]: value }));
  };

  useEffect(() => {
    api('GET', '/api/lists').then(
      (b) => setLists(b.lists),
      (e) => setError(e),
    );
  }, []);

  useEffect(() => {
    setListDetail(null);
    if (f.target !== 'list' || !f.listId) return undefined;
    let gone = false;
    api('GET', `/api/lists/${f.listId}`).then(
      (d) => !gone && setListDetail(d),
      (e) => !gone && setError(e),
    );
    return () => {
      gone = true;
    };
  }, [f.target, f.listId]);

  const chooseFile = async (e) => {
    const chosen = e.currentTarget.files?.[0] ?? null;
    submissionKey.current = null;
    setFile(chosen);
    setCsv(chosen ? { reading: true } : null);
    if (!chosen) return;
    try {
      setCsv(await csvSummary(chosen));
    } catch (err) {
      setCsv({ problem: `the file could not be read: ${err.message}` });
    }
  };

  const sample = f.target === 'csv' ? (csv?.sample ?? null) : (listDetail?.sample ?? null);
  const sampleFrom = f.target === 'csv' ? 'the first row of the CSV file' : 'the first member of the list';
  const hasContent = f.subject !== '' || f.html !== '' || f.text !== '';
  const preview = usePreview(
    hasContent ? { subject: f.subject, html: f.html === '' ? null : f.html, text: f.text === '' ? null : f.text, fields: sample ? { ...sample.fields, email: sample.email } : {} } : null,
  );

  const submit = async (e) => {
    e.preventDefault();
    if (inFlight.current) return;
    inFlight.current = true;
    setBusy(true);
    setError(null);
    setFieldErrors({});
    submissionKey.current ??= newIdempotencyKey();
    const key = submissionKey.current;
    let stage = 'delivery';
    try {
      let listId = f.listId;
      if (f.target === 'csv') {
        if (!file) throw new ApiError(400, { error: 'invalid request', issues: [{ path: 'recipients', message: 'choose a CSV file of recipients' }] });
        if (uploaded.current?.file === file) listId = uploaded.current.listId;
        else {
          stage = 'list';
          const name = (file.name || 'recipients.csv').slice(0, 200);
          const list = await api('POST', `/api/lists?name=${encodeURIComponent(name)}`, file, { contentType: 'text/csv', headers: { 'Idempotency-Key': `${key}-list` } });
          uploaded.current = { file, listId: list.id };
          listId = list.id;
          stage = 'delivery';
        }
      } else if (!listId) {
        throw new ApiError(400, { error: 'invalid request', issues: [{ path: 'listId', message: 'choose a stored list' }] });
      }
      const created = await api('POST', '/api/deliveries', deliveryBody(f, listId), { headers: { 'Idempotency-Key': `${key}-delivery` } });
      location.hash = link(`/deliveries/${created.id}`);
    } catch (err) {
      setError(stage === 'list' ? new Error(`The CSV file was refused: ${err.message}`) : err);
      setFieldErrors(issuesByInput(err, stage === 'list' ? 'nd-target' : null));
      setBusy(false);
      inFlight.current = false;
    }
  };

  /** Label, input and the API's message about it, tied together for screen readers. */
  const field = (id, label, input, hint) => html`<div class="field">
    <label for=${id}>${label}</label>
    ${input}
    ${hint && html`<span class="muted small" id=${`${id}-hint`}>${hint}</span>`}
    ${fieldErrors[id] && html`<span class="error small" id=${`${id}-error`}>${fieldErrors[id]}</span>`}
  </div>`;
  const aria = (id, hint) => ({
    'aria-invalid': fieldErrors[id] ? 'true' : undefined,
    'aria-describedby': [hint ? `${id}-hint` : null, fieldErrors[id] ? `${id}-error` : null].filter(Boolean).join(' ') || undefined,
  });

  return html`<div class="new-delivery">
    <form class="delivery-form" onSubmit=${submit} aria-label="New delivery" novalidate>
      <fieldset>
        <legend>Recipients</legend>
        <div class="choices" role="radiogroup" aria-label="Where the recipients come from">
          <label class="check"><input type="radio" name="target" value="csv" checked=${f.target === 'csv'} onChange=${set('target')} /> A CSV file</label>
          <label class="check"><input type="radio" name="target" value="list" checked=${f.target === 'list'} onChange=${set('target')} /> A stored list</label>
        </div>
        ${f.target === 'csv'
          ? field(
              'nd-target',
              'CSV file',
              html`<input id="nd-target" type="file" accept=".csv,text/csv" onChange=${chooseFile} ...${aria('nd-target', true)} />`,
              'A header row with an email column; the other columns are fields the message can use ({{firstName}}). Uploaded as a stored list when the delivery is created.',
            )
          : field(
              'nd-target',
              'Stored list',
              html`<select id="nd-target" value=${f.listId} onChange=${set('listId')} ...${aria('nd-target', true)}>
                <option value="">${lists === null ? 'Loading lists…' : lists.length ? 'Choose a list' : 'No stored list'}</option>
                ${(lists ?? []).map((l) => html`<option value=${l.id}>${l.name} — ${num(l.memberCount)} recipients, ${date(l.createdAt)}</option>`)}
              </select>`,
              'The 100 newest lists.',
            )}
        <p role="status" class="small" data-testid="target-summary">
          ${f.target === 'csv' && csv?.reading && 'Reading the file…'}
          ${f.target === 'csv' && csv && !csv.reading && (csv.problem
            ? html`<span class="error">This file cannot be used: ${csv.problem}.</span>`
            : html`<strong>${num(csv.rows)}</strong> recipients; columns: ${csv.columns.join(', ')} (address column: <code>${csv.addressColumn}</code>).`)}
          ${f.target === 'list' && listDetail && html`<strong>${num(listDetail.memberCount)}</strong> recipients; fields: ${listDetail.fields.length ? listDetail.fields.join(', ') : 'none'}.`}
        </p>
      </fieldset>

      <fieldset>
        <legend>Message</legend>
        ${field('nd-name', 'Delivery name', html`<input id="nd-name" type="text" required maxlength="200" value=${f.name} onInput=${set('name')} ...${aria('nd-name')} />`)}
        <div class="row">
          ${field('nd-from-address', 'From address', html`<input id="nd-from-address" type="email" required autocomplete="off" value=${f.fromAddress} onInput=${set('fromAddress')} ...${aria('nd-from-address')} />`)}
          ${field('nd-from-name', 'From name', html`<input id="nd-from-name" type="text" maxlength="200" value=${f.fromName} onInput=${set('fromName')} ...${aria('nd-from-name')} />`)}
        </div>
        ${field('nd-reply-to', 'Reply-To address (optional)', html`<input id="nd-reply-to" type="email" autocomplete="off" value=${f.replyTo} onInput=${set('replyTo')} ...${aria('nd-reply-to')} />`)}
        ${field('nd-subject', 'Subject', html`<input id="nd-subject" type="text" required maxlength="998" value=${f.subject} onInput=${set('subject')} ...${aria('nd-subject', true)} />`, 'Fields in double braces: Hello {{firstName}}.')}
        ${field('nd-html', 'HTML body', html`<textarea id="nd-html" rows="10" spellcheck="false" value=${f.html} onInput=${set('html')} ...${aria('nd-html', true)}></textarea>`, 'HTML or text, or both (a text part helps with spam filters).')}
        ${field('nd-text', 'Text body', html`<textarea id="nd-text" rows="6" value=${f.text} onInput=${set('text')} ...${aria('nd-text')}></textarea>`)}
      </fieldset>

      <fieldset>
        <legend>Sending</legend>
        <div class="row">
          ${field('nd-validity', 'Validity', html`<input id="nd-validity" type="number" min="1" step="1" required value=${f.validityValue} onInput=${set('validityValue')} ...${aria('nd-validity', true)} />`, 'How long after sending starts a recipient may still be tried (retries of soft bounces); at most 30 days.')}
          ${field('nd-validity-unit', 'Validity unit', html`<select id="nd-validity-unit" value=${f.validityUnit} onChange=${set('validityUnit')}>${VALIDITY_UNITS.map(([v, l]) => html`<option value=${v}>${l}</option>`)}</select>`)}
        </div>
        ${field(
          'nd-waves',
          'Waves',
          html`<select id="nd-waves" value=${f.waveMode} onChange=${set('waveMode')} ...${aria('nd-waves')}>
            <option value="single">One wave: everyone at once</option>
            <option value="size">Waves of a fixed size, at a fixed interval</option>
            <option value="ramp_up">Ramp-up: growing waves (a new sending IP)</option>
          </select>`,
        )}
        ${f.waveMode === 'size' &&
        html`<div class="row">
          ${field('nd-wave-by', 'Wave size given as', html`<select id="nd-wave-by" value=${f.waveBy} onChange=${set('waveBy')}><option value="percent">a percentage of the recipients</option><option value="size">a number of recipients</option></select>`)}
          ${field('nd-wave-amount', f.waveBy === 'percent' ? 'Percent per wave' : 'Recipients per wave', html`<input id="nd-wave-amount" type="number" min="1" max=${f.waveBy === 'percent' ? 100 : undefined} step=${f.waveBy === 'percent' ? 'any' : '1'} value=${f.waveAmount} onInput=${set('waveAmount')} />`)}
          ${field('nd-wave-period', 'Minutes between waves', html`<input id="nd-wave-period" type="number" min="0" step="1" value=${f.wavePeriodMinutes} onInput=${set('wavePeriodMinutes')} />`)}
        </div>`}
        ${f.waveMode === 'ramp_up' &&
        html`<div class="row">
          ${field('nd-ramp-initial', 'First wave (recipients)', html`<input id="nd-ramp-initial" type="number" min="1" step="1" value=${f.rampInitial} onInput=${set('rampInitial')} />`)}
          ${field('nd-ramp-growth', 'Growth factor', html`<input id="nd-ramp-growth" type="number" min="1" max="10" step="any" value=${f.rampGrowth} onInput=${set('rampGrowth')} />`)}
          ${field('nd-ramp-period', 'Hours between waves', html`<input id="nd-ramp-period" type="number" min="0" step="any" value=${f.rampPeriodHours} onInput=${set('rampPeriodHours')} />`)}
          ${field('nd-ramp-max', 'Largest wave (recipients)', html`<input id="nd-ramp-max" type="number" min="1" step="1" value=${f.rampMax} onInput=${set('rampMax')} />`)}
        </div>`}
        <label class="check"><input id="nd-local-time" type="checkbox" checked=${f.localTime} onChange=${set('localTime')} ...${aria('nd-local-time')} /> Send at a local time of day in each recipient's time zone</label>
        ${fieldErrors['nd-local-time'] && html`<span class="error small" id="nd-local-time-error">${fieldErrors['nd-local-time']}</span>`}
        ${f.localTime &&
        html`<div class="row">
          ${field('nd-local-hour', 'Local time (HH:mm)', html`<input id="nd-local-hour" type="time" value=${f.localTimeOfDay} onInput=${set('localTimeOfDay')} />`)}
          ${field('nd-local-zone', 'Time zone when a recipient has none', html`<input id="nd-local-zone" type="text" value=${f.localTimeZone} onInput=${set('localTimeZone')} />`)}
          ${field('nd-local-field', 'Field holding the time zone', html`<input id="nd-local-field" type="text" value=${f.localTimeZoneField} onInput=${set('localTimeZoneField')} />`)}
        </div>`}
        ${field('nd-contact-date', 'Contact date (your time; empty: as soon as confirmed)', html`<input id="nd-contact-date" type="datetime-local" value=${f.contactDate} onInput=${set('contactDate')} ...${aria('nd-contact-date')} />`)}
      </fieldset>

      <p class="muted small">The delivery is analysed once created; nothing is sent before you confirm it on its page.</p>
      <div class="submit-row">
        <button type="submit" disabled=${busy}>${busy ? 'Creating…' : 'Create delivery'}</button>
        <a href=${link('/deliveries')}>Cancel</a>
      </div>
      <div data-testid="create-error"><${ErrorNote} error=${error} /></div>
    </form>
    <${Preview} sample=${sample} sampleFrom=${sampleFrom} preview=${preview} />
  </div>`;
}
