/** Personalisation: compiles a delivery's subject/html/text templates (Handlebars) and lists the fields they need. */
import Handlebars from 'handlebars';

export interface MessageContent {
  subject: string;
  html: string | null;
  text: string | null;
}

export interface CompiledMessage {
  render(fields: Record<string, unknown>): MessageContent;
  /** Top-level field names the templates read (e.g. firstName in {{firstName}}), without helpers and built-ins. */
  fields: string[];
}

// A separate environment so no global helper registration leaks in or out.
const hbs = Handlebars.create();

const BUILT_INS = new Set(['if', 'unless', 'each', 'with', 'lookup', 'log', 'this', 'else']);

/** Collects the first path segment of every mustache/block param, which is what the recipient fields must provide. */
function collectFields(source: string, into: Set<string>): void {
  const ast = hbs.parse(source);
  const visit = (node: unknown): void => {
    if (!node || typeof node !== 'object') return;
    const n = node as Record<string, unknown>;
    if (n.type === 'PathExpression') {
      const parts = n.parts as string[];
      if ((n.depth as number) === 0 && parts.length > 0 && !(n.data as boolean) && !BUILT_INS.has(parts[0])) into.add(parts[0]);
      return;
    }
    for (const [key, value] of Object.entries(n)) {
      if (key === 'loc') continue;
      // A block's helper name (`each`, `if`) is a PathExpression too; its params are what matters.
      if ((n.type === 'BlockStatement' || n.type === 'MustacheStatement' || n.type === 'SubExpression') && key === 'path') {
        const isHelperCall = ((n.params as unknown[]) ?? []).length > 0 || n.type === 'BlockStatement';
        if (isHelperCall) continue;
      }
      // Inside {{#each}} and {{#with}} paths are relative to the item, not recipient fields.
      if (n.type === 'BlockStatement' && key === 'program' && ['each', 'with'].includes((n.path as { original: string }).original)) continue;
      if (Array.isArray(value)) value.forEach(visit);
      else visit(value);
    }
  };
  visit(ast);
}

/** Compiles once per delivery; throws a Handlebars parse error with its position when a template is malformed. */
export function compileMessage(content: MessageContent): CompiledMessage {
  const opts = { strict: false, noEscape: false };
  const subject = hbs.compile(content.subject, { ...opts, noEscape: true });
  const html = content.html != null ? hbs.compile(content.html, opts) : null;
  // Text parts are not HTML: no entity escaping.
  const text = content.text != null ? hbs.compile(content.text, { ...opts, noEscape: true }) : null;
  const fields = new Set<string>();
  collectFields(content.subject, fields);
  if (content.html != null) collectFields(content.html, fields);
  if (content.text != null) collectFields(content.text, fields);
  return {
    fields: [...fields].sort(),
    render(data) {
      return {
        // A header cannot hold line breaks; personalised values could bring one.
        subject: subject(data).replace(/[\r\n]+/g, ' '),
        html: html ? html(data) : null,
        text: text ? text(data) : null,
      };
    },
  };
}

/** A template that does not compile or render, with the part (subject, html or text) it is in. */
export class MessageTemplateError extends Error {
  constructor(
    readonly part: keyof MessageContent,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Renders the message for one recipient as a delivery would (compileMessage, then render). Each part is first compiled
 * and rendered alone, so that an error names the part it is in: the delivery's analysis reports one error for the
 * whole message, a person editing it needs to know where to look.
 */
export function renderForRecipient(content: MessageContent, data: Record<string, unknown>): { content: MessageContent; fields: string[] } {
  for (const part of ['subject', 'html', 'text'] as const) {
    const source = content[part];
    if (source == null) continue;
    try {
      compileMessage({ subject: part === 'subject' ? source : '', html: part === 'html' ? source : null, text: part === 'text' ? source : null }).render(data);
    } catch (e) {
      throw new MessageTemplateError(part, (e as Error).message);
    }
  }
  const compiled = compileMessage(content);
  return { content: compiled.render(data), fields: compiled.fields };
}
