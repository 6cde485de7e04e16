/** The address denylist: addresses no delivery may send to again (one-click unsubscribes so far). */
import type { Pool } from 'pg';

export class DenylistStore {
  constructor(private readonly pool: Pool) {}

  /**
   * Denylists the address of a delivery's recipient (an RFC 8058 one-click unsubscribe). `added` is false when the
   * address was already denylisted, or when the delivery has no such recipient: a repeated click changes nothing.
   */
  async unsubscribe(deliveryId: string, recipientId: number): Promise<{ added: boolean }> {
    const r = await this.pool.query(
      `INSERT INTO address_denylist (address_key, reason, source, delivery_id, recipient_id)
       SELECT address_key, 'unsubscribed', 'list-unsubscribe', delivery_id, recipient_id FROM delivery_recipients WHERE delivery_id = $1 AND recipient_id = $2
       ON CONFLICT (address_key) DO NOTHING`,
      [deliveryId, recipientId],
    );
    return { added: (r.rowCount ?? 0) > 0 };
  }
}
