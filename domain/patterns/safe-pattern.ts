/**
 * Regex patterns that come from data (rule tables seeded from files and edited through the API) and run on text from
 * outside (SMTP replies, bounce messages), in every worker. They are compiled here, and only here, with RE2 (the re2js
 * package, a pure-JavaScript port: no native binary to build or download). RE2 never backtracks: matching time grows
 * linearly with the text whatever the pattern, so `^(a|aa)+$` on a long reply costs a few milliseconds instead of
 * hours. The price is RE2's syntax: no look-ahead or look-behind, no backreferences, no atomic groups or possessive
 * quantifiers. A refused pattern gets a PatternSyntaxError saying which construct and why, in words its author can act
 * on. Patterns written in code (not from data) stay native RegExp.
 *
 * Any rule table may use it (qualification rules, inbound rules, MX site rules): compile once when the table loads,
 * then call test() per text.
 */
import { RE2JS, RE2JSSyntaxException } from 're2js';

export interface SafePatternOptions {
  /** Case-insensitive (default true: every rule table's patterns are). */
  ignoreCase?: boolean;
  /** "^" and "$" also match at each "\n" of the text, not only at its ends (default false). */
  multiline?: boolean;
}

/** A compiled pattern. Stateless: test() does not depend on earlier calls (unlike a native /g regex). */
export interface SafePattern {
  readonly source: string;
  /** True when the pattern matches anywhere in `text`. Time linear in text.length. */
  test(text: string): boolean;
}

/**
 * Largest compiled program accepted, in RE2 instructions. Linear time is linear in text × program: this bound keeps the
 * per-character cost of one pattern bounded, and the compile bounded in time and memory (a 1,000-character source with
 * nested repeats can otherwise compile to about a million instructions). The largest shipped rule compiles to about
 * 750; a long alternation of phrases of 1,000 characters stays well under the limit.
 */
export const MAX_PATTERN_PROGRAM_SIZE = 3000;

/** Where RE2's syntax is described, for messages. */
const SYNTAX_REFERENCE = 'RE2 syntax: https://github.com/google/re2/wiki/Syntax';
const ENGINE = 'the linear-time regex engine (RE2)';

/** A pattern RE2 refuses, or too large; `message` says which construct and what to write instead. */
export class PatternSyntaxError extends Error {
  constructor(
    readonly source: string,
    message: string,
  ) {
    super(message);
    this.name = 'PatternSyntaxError';
  }
}

/**
 * Compiled patterns by flags and source. A worker recompiles its whole rule table after every rule change, and the API's
 * /test routes compile the stored table per request; compiling with RE2 costs about 0.3 ms per pattern, so unchanged
 * patterns are taken from here. A compiled pattern is stateless, so sharing it between tables is safe. Bounded
 * (least recently used first out) because API writes bring new sources.
 */
const compiled = new Map<string, SafePattern>();
const MAX_CACHED_PATTERNS = 1000;

/** Compiles a pattern from data; throws PatternSyntaxError when RE2 refuses it or its program is too large. */
export function compileSafePattern(source: string, opts: SafePatternOptions = {}): SafePattern {
  const ignoreCase = opts.ignoreCase ?? true;
  const multiline = opts.multiline ?? false;
  const key = `${ignoreCase ? 'i' : ''}${multiline ? 'm' : ''}/${source}`;
  const hit = compiled.get(key);
  if (hit !== undefined) {
    compiled.delete(key);
    compiled.set(key, hit);
    return hit;
  }
  const pattern = compileUncached(source, ignoreCase, multiline);
  compiled.set(key, pattern);
  if (compiled.size > MAX_CACHED_PATTERNS) compiled.delete(compiled.keys().next().value as string);
  return pattern;
}

function compileUncached(source: string, ignoreCase: boolean, multiline: boolean): SafePattern {
  let re: RE2JS;
  try {
    re = RE2JS.compile(source, (ignoreCase ? RE2JS.CASE_INSENSITIVE : 0) | (multiline ? RE2JS.MULTILINE : 0));
  } catch (e) {
    if (e instanceof RE2JSSyntaxException) throw new PatternSyntaxError(source, explain(e, source, flagPrefix(ignoreCase, multiline)));
    throw e;
  }
  const size = re.programSize();
  if (size > MAX_PATTERN_PROGRAM_SIZE) {
    throw new PatternSyntaxError(
      source,
      `compiles to ${size} RE2 instructions, more than the ${MAX_PATTERN_PROGRAM_SIZE} allowed (the cost of every match grows with it): ` +
        'simplify it, lower its repeat counts (nested ones multiply) or split it into several rules',
    );
  }
  // Case-sensitive patterns keep re2js's own prefilter.
  const need = ignoreCase && PREFILTERS_WORK ? literalNeed(source, multiline) : null;
  if (need === null) return Object.freeze({ source, test: (text: string) => re.test(text) });
  return Object.freeze({ source, test: (text: string) => holds(need, folded(text)) && re.test(text) });
}

/** The reason RE2 refuses a pattern, or null when it compiles: for validators that collect issues instead of throwing. */
export function patternProblem(source: string, opts: SafePatternOptions = {}): string | null {
  try {
    compileSafePattern(source, opts);
    return null;
  } catch (e) {
    if (e instanceof PatternSyntaxError) return e.message;
    throw e;
  }
}

/** What re2js puts before the source when it applies flags; it shows in some of its error fragments. */
function flagPrefix(ignoreCase: boolean, multiline: boolean): string {
  return (multiline ? '(?m)' : '') + (ignoreCase ? '(?i)' : '');
}

/**
 * Turns RE2's error into a message about the construct used. RE2 reports a code ("invalid escape sequence", ...) and the
 * offending fragment; the constructs people bring from JavaScript or PCRE get a sentence of their own. Anything else
 * keeps RE2's own words.
 */
function explain(e: RE2JSSyntaxException, source: string, prefix: string): string {
  const code = e.getDescription();
  let fragment = e.getPattern() ?? '';
  if (prefix && fragment.startsWith(prefix)) fragment = fragment.slice(prefix.length);
  const unsupported = (what: string) => `uses ${what}, which ${ENGINE} does not support`;
  if (fragment.startsWith('(?=') || fragment.startsWith('(?!')) return unsupported(`a look-ahead (\`${fragment.slice(0, 3)}...)\`)`);
  if (fragment.startsWith('(?<=') || fragment.startsWith('(?<!')) return unsupported(`a look-behind (\`${fragment.slice(0, 4)}...)\`)`);
  if (fragment.startsWith('(?>')) return unsupported('an atomic group (`(?>...)`)');
  if (fragment.startsWith('(?#')) return unsupported('a comment group (`(?#...)`)');
  // RE2 stops at "(?P" for Python's named backreference "(?P=name)".
  if (fragment === '(?P' && source.includes('(?P=')) return unsupported('a named backreference (`(?P=name)`)');
  if (code === 'invalid escape sequence') {
    if (/^\\[1-9]/.test(fragment)) return unsupported(`a backreference (\`${fragment}\`)`);
    if (fragment === '\\k') return unsupported('a named backreference (`\\k<name>`)');
    if (fragment === '\\u') return `uses the escape \`\\u\`, which RE2 does not have: write a code point as \\x{00E9} (${SYNTAX_REFERENCE})`;
    if (fragment === '\\Z') return `uses \`\\Z\`, which RE2 does not have: use \`$\` or \`\\z\` (${SYNTAX_REFERENCE})`;
    return `uses the escape \`${fragment}\`, which RE2 does not have (${SYNTAX_REFERENCE})`;
  }
  if (code === 'invalid nested repetition operator') {
    if (fragment.endsWith('+')) return unsupported(`a possessive quantifier (\`${fragment}\`)`);
    return `has a repetition operator applied to another (\`${fragment}\`): group the inner one, e.g. (?:a*)*`;
  }
  if (code === 'invalid repeat count') {
    return `has an invalid repeat count \`${fragment}\`: at most 1000, minimum not above maximum, nested repeats multiplied at most 1000 (${SYNTAX_REFERENCE})`;
  }
  return `is not a valid RE2 regex: ${code}${fragment ? `: \`${fragment}\`` : ''} (${SYNTAX_REFERENCE})`;
}

/*
 * Prefilter. re2js skips texts that lack a pattern's required literals (a substring search, far cheaper than running the
 * automaton), but not for a case-insensitive pattern, which every rule pattern is: there RE2 costs about 1 µs per
 * pattern per 100 characters, and a 100,000-character reply run through a whole rule table took over 100 ms. So the
 * required literals are taken from the same pattern compiled case-sensitively, lowercased, and looked for in the text
 * folded to lowercase. Sound (never refuses a text RE2 would match): case-insensitive RE2 matches a literal on any
 * character of its Unicode case-folding orbit; the only non-ASCII characters in the orbit of an ASCII letter are
 * U+212A KELVIN SIGN, which toLowerCase() turns into "k", and U+017F LONG S, replaced by "s" below (a test scans every
 * code point to keep that true). Literals with other non-ASCII characters are not used. The prefilter only ever skips
 * RE2 when it answers "no": a "yes" still runs RE2, so it cannot make a text match.
 */

/** Literals that a match needs (lowercase ASCII strings): one string, all of several, or any of several. */
export type LiteralNeed = string | { readonly all: readonly LiteralNeed[] } | { readonly any: readonly LiteralNeed[] };

/** re2js's prefilter node kinds (its Prefilter.Type; 0 is "none"), checked against known patterns at load: PREFILTERS_WORK. */
const PF_EXACT = 1;
const PF_AND = 2;
const PF_OR = 3;

interface Re2jsPrefilter {
  type?: unknown;
  str?: unknown;
  subs?: unknown;
}

/** The literals a match of the pattern needs, or null when nothing useful is required (or anything is unexpected). */
function literalNeed(source: string, multiline: boolean): LiteralNeed | null {
  let pf: unknown;
  try {
    pf = RE2JS.compile(source, multiline ? RE2JS.MULTILINE : 0).re2().prefilter;
  } catch {
    return null;
  }
  return needOf(pf as Re2jsPrefilter | null);
}

/** Every "null" means "no requirement": dropping a requirement only makes the prefilter say "maybe" more often. */
function needOf(pf: Re2jsPrefilter | null | undefined): LiteralNeed | null {
  if (pf === null || pf === undefined || typeof pf !== 'object') return null;
  switch (pf.type) {
    case PF_EXACT:
      return typeof pf.str === 'string' && pf.str.length > 0 && /^[\x00-\x7f]+$/.test(pf.str) ? pf.str.toLowerCase() : null;
    case PF_AND: {
      if (!Array.isArray(pf.subs)) return null;
      const all = pf.subs.map((s) => needOf(s as Re2jsPrefilter)).filter((n): n is LiteralNeed => n !== null);
      return all.length === 0 ? null : all.length === 1 ? all[0] : { all };
    }
    case PF_OR: {
      if (!Array.isArray(pf.subs) || pf.subs.length === 0) return null;
      const any = pf.subs.map((s) => needOf(s as Re2jsPrefilter));
      return any.some((n) => n === null) ? null : { any: any as LiteralNeed[] };
    }
    default:
      return null;
  }
}

function holds(need: LiteralNeed, text: string): boolean {
  if (typeof need === 'string') return text.includes(need);
  if ('all' in need) return need.all.every((n) => holds(n, text));
  return need.any.some((n) => holds(n, text));
}

// The patterns of a table are tried one after another on the same text: fold it once.
let lastText: string | null = null;
let lastFolded = '';

/** The text in lowercase, LONG S as "s" (see above). */
function folded(text: string): string {
  if (text !== lastText) {
    lastFolded = text.toLowerCase().replaceAll('\u017f', 's');
    lastText = text;
  }
  return lastFolded;
}

/**
 * Whether re2js's prefilter still has the shape read above (its internals are not a published API): if a new version
 * changes it, prefiltering turns itself off and patterns run on RE2 alone, correct but slower on long texts
 * (`prefilterActive` lets a test notice).
 */
const PREFILTERS_WORK: boolean = (() => {
  try {
    const need = (p: string) => JSON.stringify(literalNeed(p, false));
    return (
      need('Abc') === '"abc"' &&
      need('abc.*DEF') === '{"all":["abc","def"]}' &&
      need('abc|def') === '{"any":["abc","def"]}' &&
      need('a*') === 'null'
    );
  } catch {
    return false;
  }
})();

/** True when long texts are prefiltered (see above); false would mean re2js changed its internals. */
export function prefilterActive(): boolean {
  return PREFILTERS_WORK;
}

/** The literals the prefilter requires of a pattern (lowercase), for tests: null when it requires none. */
export function prefilterOf(source: string, opts: SafePatternOptions = {}): LiteralNeed | null {
  return literalNeed(source, opts.multiline ?? false);
}
