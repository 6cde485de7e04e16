// A webhook receiver for the delivery engine's events (docs/webhooks.md), in Node.js 20+ with the standardwebhooks
// package (`npm install standardwebhooks`). It verifies the signature on the raw body, answers at once, skips a
// message it has already handled (same webhook-id: a retry), and handles each event of a new one.
//
//   WEBHOOK_SECRET=whsec_... PORT=8080 node receiver.mjs
//
// Each handled event is printed as one JSON line; replace handleEvent with your own code.
import http from 'node:http';
import { Webhook } from 'standardwebhooks';

const secret = process.env.WEBHOOK_SECRET;
if (!secret?.startsWith('whsec_')) {
  console.error('WEBHOOK_SECRET must be the subscription secret (whsec_...), from POST /api/webhooks or GET /api/webhooks/:id/secret');
  process.exit(2);
}
const webhook = new Webhook(secret);

// Message ids already handled. Keep them somewhere durable (a table with a unique key) for longer than the engine
// retries (24 h by default); in memory here.
const handledMessages = new Set();

function handleEvent(event, messageId) {
  const { deliveryId, recipientId, address, status, failureReason } = event.data;
  console.log(JSON.stringify({ messageId, id: event.id, type: event.type, timestamp: event.timestamp, deliveryId, recipientId, address, status, failureReason }));
}

const server = http.createServer((req, res) => {
  if (req.method !== 'POST') {
    res.writeHead(405).end();
    return;
  }
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    // Verify the bytes as received: parsing and re-serialising the JSON first would change them.
    const body = Buffer.concat(chunks).toString('utf8');
    let payload;
    try {
      // Checks webhook-signature against "webhook-id.webhook-timestamp.body", and a timestamp within 5 minutes.
      payload = webhook.verify(body, {
        'webhook-id': String(req.headers['webhook-id'] ?? ''),
        'webhook-timestamp': String(req.headers['webhook-timestamp'] ?? ''),
        'webhook-signature': String(req.headers['webhook-signature'] ?? ''),
      });
    } catch (e) {
      console.error(JSON.stringify({ rejected: e.message }));
      res.writeHead(401).end();
      return;
    }
    const messageId = req.headers['webhook-id'];
    if (!handledMessages.has(messageId)) {
      // Events of one message are in order; a replayed event comes in a message of its own (a new webhook-id).
      for (const event of payload.data.events) handleEvent(event, messageId);
      handledMessages.add(messageId);
    }
    // Any 2xx acknowledges the message; anything else (or no answer within 15 s) makes the engine try again later.
    res.writeHead(204).end();
  });
});

server.listen(Number(process.env.PORT ?? 8080), process.env.HOST ?? '127.0.0.1', () => {
  console.log(JSON.stringify({ listening: server.address().port }));
});
