/**
 * The failure converter of every worker, client and workflow bundle: a failure's message and stack trace travel in its
 * encoded attributes (a payload), so the payload codec seals them too. Without it a failure that quotes an SMTP reply
 * ("550 5.1.1 <someone@example.com>: user unknown") would sit in clear text in the history.
 *
 * Plain CommonJS on purpose: the SDK loads it by path with Node's own require (in the worker, in every client, and
 * under the test runner, where a TypeScript file would not load), and the workflow bundler includes it as it is.
 */
'use strict';
const { DefaultFailureConverter } = require('@temporalio/common');

exports.failureConverter = new DefaultFailureConverter({ encodeCommonAttributes: true });
