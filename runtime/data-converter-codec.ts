/**
 * The one data converter of every Temporal client and worker the project creates: the AES-256-GCM payload codec with
 * the configured keys, and the failure converter that moves failure messages into (sealed) payloads. The composition
 * root hands it out; nothing else builds one.
 */
import path from 'node:path';
import type { DataConverter, PayloadCodec } from '@temporalio/common';
import { AesGcmPayloadCodec, type PayloadKeyRing } from './payload-codec';

/** Path of the failure converter module (a worker and the workflow bundle load it by path). */
export const FAILURE_CONVERTER_PATH = path.join(__dirname, 'codec-failure-converter.js');

/** Options for bundleWorkflowCode: a prebuilt bundle must carry the same failure converter as the worker. */
export function workflowBundleConverterOptions(): { failureConverterPath: string } {
  return { failureConverterPath: FAILURE_CONVERTER_PATH };
}

export function payloadDataConverter(ring: PayloadKeyRing, o: { sealOutgoing?: boolean } = {}): DataConverter {
  const codec = new AesGcmPayloadCodec(ring);
  const payloadCodecs: PayloadCodec[] = [o.sealOutgoing === false ? { encode: async (p) => p, decode: (p) => codec.decode(p) } : codec];
  return { payloadCodecs, failureConverterPath: FAILURE_CONVERTER_PATH };
}
