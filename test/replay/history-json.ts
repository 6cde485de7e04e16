/**
 * Histories to and from their JSON form (proto3 JSON, `{ "events": [...] }`: what `historyToJSON` / `historyFromJSON`
 * of @temporalio/common and `temporal workflow show --output json` use).
 *
 * With this project's lockfile, @temporalio/common and @temporalio/proto each get their own copy of protobufjs 8, and
 * the SDK's two helpers fail with "type must be a Type" (the ProtoJSON code of one copy is given the reflected type of
 * the other; `Worker.runReplayHistories` given a JSON history calls `historyFromJSON` and fails the same way). The SDK
 * helpers are tried first; on that error the same conversion is done with the copy of protobufjs that
 * @temporalio/proto uses, which produces the same JSON.
 */
import { createRequire } from 'node:module';
import * as sdk from '@temporalio/common/lib/proto-utils';
import type { History } from '@temporalio/common/lib/proto-utils';
import type * as protoModule from '@temporalio/proto';

interface ProtoJson {
  toJson(type: unknown, message: unknown): unknown;
  fromJson(type: unknown, json: unknown, options?: { ignoreUnknownFields?: boolean }): unknown;
}

let fallback: { protojson: ProtoJson; historyType: unknown; proto: typeof protoModule } | null = null;

function protoCopy() {
  if (!fallback) {
    // Plain require (not an ESM import, which test runners may wrap): the very objects the SDK itself uses.
    const requireHere = createRequire(__filename);
    const proto = requireHere('@temporalio/proto') as typeof protoModule;
    const { patchProtobufRoot } = requireHere('@temporalio/proto/lib/patch-protobuf-root') as { patchProtobufRoot: (root: unknown) => { lookupType(name: string): unknown } };
    const protojson = createRequire(requireHere.resolve('@temporalio/proto'))('protobufjs/ext/protojson') as ProtoJson;
    fallback = { protojson, historyType: patchProtobufRoot(proto).lookupType('temporal.api.history.v1.History'), proto };
  }
  return fallback;
}

const isDuplicateProtobufError = (e: unknown) => e instanceof TypeError && /must be a Type/.test(e.message);

/** The JSON form of a history (an object, ready for JSON.stringify). */
export function historyToJsonObject(history: History): { events: unknown[] } {
  try {
    return JSON.parse(sdk.historyToJSON(history));
  } catch (e) {
    if (!isDuplicateProtobufError(e)) throw e;
    const { protojson, historyType, proto } = protoCopy();
    return protojson.toJson(historyType, proto.temporal.api.history.v1.History.fromObject(history)) as { events: unknown[] };
  }
}

/** A history object from its JSON form (what `Worker.runReplayHistories` replays without converting it again). */
export function historyFromJsonObject(json: unknown): History {
  try {
    return sdk.historyFromJSON(json);
  } catch (e) {
    if (!isDuplicateProtobufError(e)) throw e;
    const { protojson, historyType } = protoCopy();
    const loaded = protojson.fromJson(historyType, json, { ignoreUnknownFields: true });
    if (!loaded) throw new TypeError('invalid history JSON');
    return loaded as History;
  }
}
