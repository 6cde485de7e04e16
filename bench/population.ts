/**
 * A deterministic synthetic population streamed as CSV (header `email,firstName,city`), and what its analysis must find.
 * Row i is either an invalid address (~1%), a duplicate of an earlier valid address (~2%, half of them in upper case),
 * or a new unique address. Unique number u picks the address, the domain and the fields, so the expected exclusions are
 * known without keeping the list in memory.
 */
import { Readable } from 'node:stream';

export interface PopulationSpec {
  rows: number;
  /** Share of rows with an invalid address. */
  invalidRate: number;
  /** Share of rows repeating an earlier valid address. */
  duplicateRate: number;
  /** Every `denylistEvery`-th unique address (u % n === 1) is on the denylist; 0: none. */
  denylistEvery: number;
  /** Every `quarantineEvery`-th unique address (u % n === 2) is quarantined; u % n === 3 has errors but is not quarantined. */
  quarantineEvery: number;
  /** Every `missingCityEvery`-th unique address (u % n === 4) has no city (a field the template needs); 0: none. */
  missingCityEvery: number;
  seed: number;
  /** Marks the addresses of this population (a fan-out list must not meet the analysis list's denylist and quarantine). */
  tag: string;
}

/** The analysis mix: about 1% invalid, 2% duplicates, a few hundred denylisted, quarantined and missing a field. */
export function analysisPopulation(rows: number): PopulationSpec {
  return { rows, invalidRate: 0.01, duplicateRate: 0.02, denylistEvery: 4_999, quarantineEvery: 4_999, missingCityEvery: 997, seed: 42, tag: 'u' };
}

/** A clean population: every row deliverable (fan-out measures sending, not exclusions). */
export function cleanPopulation(rows: number): PopulationSpec {
  return { rows, invalidRate: 0, duplicateRate: 0, denylistEvery: 0, quarantineEvery: 0, missingCityEvery: 0, seed: 7, tag: 'f' };
}

const FIRST_NAMES = ['Ada', 'Grace', 'Alan', 'Edsger', 'Barbara', 'Donald', 'Frances', 'Ken', 'Radia', 'Leslie', 'Hélène', 'José'];
const CITIES = ['Paris', 'Lyon', 'Marseille', 'Lille', 'Nantes', 'Toulouse', 'Bordeaux', 'Washington, D.C.', 'Zürich', 'Saint-Étienne'];
// About 45% of addresses at five big providers, the rest over 2,000 small domains: realistic top-domain counts.
const BIG_DOMAINS = ['gmail.test', 'yahoo.test', 'outlook.test', 'orange.test', 'free.test'];
const SMALL_DOMAINS = 2_000;
const INVALID_SHAPES = [(u: number) => `broken${u}.example.test`, (u: number) => `dots..${u}@example.test`, (u: number) => `nodot${u}@localhost`, (u: number) => `sp ace${u}@example.test`];

function mix(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x45d9f3b);
  x = Math.imul(x ^ (x >>> 16), 0x45d9f3b);
  return (x ^ (x >>> 16)) >>> 0;
}

/** The address of unique number u (stable, lower case). */
export function uniqueAddress(u: number, tag = 'u'): string {
  const h = mix(u);
  const domain = h % 100 < 45 ? BIG_DOMAINS[h % BIG_DOMAINS.length] : `shop${(h >>> 8) % SMALL_DOMAINS}.example`;
  return `${FIRST_NAMES[u % FIRST_NAMES.length].normalize('NFD').replace(/[^a-z]/gi, '').toLowerCase()}.${tag}${u}@${domain}`;
}

/** Row u of a clean population (cleanPopulation: every row a new unique address), as its CSV would carry it. */
export function cleanRow(u: number, tag = cleanPopulation(0).tag): { email: string; firstName: string; city: string } {
  return { email: uniqueAddress(u, tag), firstName: FIRST_NAMES[u % FIRST_NAMES.length], city: CITIES[u % CITIES.length] };
}

function mulberry32(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface ExpectedAnalysis {
  rows: number;
  uniques: number;
  invalid_address: number;
  duplicate: number;
  address_on_denylist: number;
  quarantined_address: number;
  missing_field: number;
  /** Characters of CSV produced (bytes, but for the few accented names). */
  chars: number;
}

function csvValue(v: string): string {
  return /[",\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v;
}

/** The CSV as a stream of ~64 KB chunks; `expected` is complete once the stream has ended. */
export function populationCsv(spec: PopulationSpec): { stream: Readable; expected: ExpectedAnalysis } {
  const expected: ExpectedAnalysis = { rows: spec.rows, uniques: 0, invalid_address: 0, duplicate: 0, address_on_denylist: 0, quarantined_address: 0, missing_field: 0, chars: 0 };
  function* chunks(): Generator<string> {
    const rand = mulberry32(spec.seed);
    let u = 0;
    let buf = 'email,firstName,city\n';
    for (let i = 1; i <= spec.rows; i++) {
      const r = rand();
      let line: string;
      if (r < spec.invalidRate) {
        expected.invalid_address++;
        line = `${INVALID_SHAPES[i % INVALID_SHAPES.length](i)},${FIRST_NAMES[i % FIRST_NAMES.length]},${csvValue(CITIES[i % CITIES.length])}`;
      } else if (r < spec.invalidRate + spec.duplicateRate && u > 0) {
        expected.duplicate++;
        const j = 1 + Math.floor(rand() * u);
        const a = uniqueAddress(j, spec.tag);
        line = `${i % 2 ? a.toUpperCase() : a},${FIRST_NAMES[j % FIRST_NAMES.length]},${csvValue(CITIES[j % CITIES.length])}`;
      } else {
        u++;
        const mod = (n: number) => (n > 0 ? u % n : -1);
        if (mod(spec.denylistEvery) === 1) expected.address_on_denylist++;
        else if (mod(spec.quarantineEvery) === 2) expected.quarantined_address++;
        const noCity = mod(spec.missingCityEvery) === 4;
        if (noCity && mod(spec.denylistEvery) !== 1 && mod(spec.quarantineEvery) !== 2) expected.missing_field++;
        line = `${uniqueAddress(u, spec.tag)},${FIRST_NAMES[u % FIRST_NAMES.length]},${noCity ? '' : csvValue(CITIES[u % CITIES.length])}`;
      }
      buf += line + '\n';
      if (buf.length >= 64 * 1024) {
        expected.chars += buf.length;
        yield buf;
        buf = '';
      }
    }
    expected.uniques = u;
    expected.chars += buf.length;
    if (buf) yield buf;
  }
  return { stream: Readable.from(chunks(), { objectMode: false }), expected };
}

/** Address keys to put on the denylist and in quarantine before analysis: the matching ones plus unrelated filler rows. */
export function exclusionLists(spec: PopulationSpec, uniques: number, filler: number) {
  const denied: string[] = [];
  const quarantined: string[] = [];
  const notQuarantined: string[] = [];
  for (let u = 1; u <= uniques; u++) {
    if (spec.denylistEvery > 0 && u % spec.denylistEvery === 1) denied.push(uniqueAddress(u, spec.tag));
    if (spec.quarantineEvery > 0 && u % spec.quarantineEvery === 2) quarantined.push(uniqueAddress(u, spec.tag));
    if (spec.quarantineEvery > 0 && u % spec.quarantineEvery === 3) notQuarantined.push(uniqueAddress(u, spec.tag));
  }
  const fillerKeys = Array.from({ length: filler }, (_, k) => `gone.${k}@old-provider.example`);
  return { denied, quarantined, notQuarantined, fillerKeys };
}
