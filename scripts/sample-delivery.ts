/** The sample delivery `npm start` sends: about 50 recipients that exercise every behaviour of the sandbox MX. */
import type { z } from 'zod';
import type { createDeliverySchema, CreateDeliveryInput } from '../api/delivery-input';

const FIRST_NAMES = ['Ada', 'Grace', 'Alan', 'Edsger', 'Barbara', 'Donald', 'Frances', 'Ken', 'Radia', 'Leslie'];

/** Local-part prefixes of docs/sandbox-mx.md, with how many recipients of each the sample holds. */
const MIX: [prefix: string, count: number][] = [
  ['', 30], // accepted at once
  ['hard', 4], // 550 5.1.1 → failed (user unknown)
  ['disabled', 1], // 550 5.2.1 → failed (account disabled)
  ['full', 2], // 452 4.2.2 → retried until validity end, then failed (mailbox full)
  ['grey', 4], // 451 4.7.1 first, accepted on retry → sent
  ['fail2-', 3], // two 451 then accepted → sent
  ['throttle2-', 2], // two 421 then accepted → sent
  ['spam', 1], // 554 5.7.1 after DATA → failed (refused)
  ['late', 2], // 250, then a DSN "5.1.1 user unknown" mailed to the VERP return path → sent, then failed (late bounce)
  ['complain', 1], // 250, then an ARF abuse report → sent, and the address on the denylist
];

/** The JSON a client would POST to /api/deliveries. */
export function sampleDelivery(): z.input<typeof createDeliverySchema> {
  const recipients: NonNullable<CreateDeliveryInput['recipients']> = [];
  let n = 0;
  for (const [prefix, count] of MIX) {
    for (let i = 0; i < count; i++) {
      n++;
      const first = FIRST_NAMES[n % FIRST_NAMES.length];
      recipients.push({ email: `${prefix}${first.toLowerCase()}${n}@sandbox.example`, fields: { firstName: first, customerId: 1000 + n } });
    }
  }
  // Two rows analysis must exclude: a duplicate and an invalid address.
  recipients.push({ email: recipients[0].email.toUpperCase(), fields: { firstName: 'Duplicate' } });
  recipients.push({ email: 'not-an-address@', fields: { firstName: 'Invalid' } });
  return {
    name: 'Sample delivery (sandbox)',
    from: { address: 'news@brand.example', name: 'Brand News' },
    subject: 'Hello {{firstName}}, your November picks',
    html: '<p>Hello {{firstName}},</p><p>Here are this month\'s picks for customer #{{customerId}}.</p>',
    text: 'Hello {{firstName}},\n\nHere are this month\'s picks for customer #{{customerId}}.',
    recipients,
    // Short, so the mailbox-full recipients reach their final status while you watch.
    validity: '90s',
    autoConfirm: true,
  };
}
