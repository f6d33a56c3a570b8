import type { OlmMachine } from "@matrix-org/matrix-sdk-crypto-wasm";
import { CLIENT_V3, enc } from "../client/server-endpoints.js";
import type { CryptoSdk } from "./sdk.js";

/** One of the machine's outgoing requests. */
export type OutgoingRequest = Awaited<ReturnType<OlmMachine["outgoingRequests"]>>[number];

/** Where a request goes: method and full path (ids escaped). */
export interface RequestRoute {
  method: "POST" | "PUT";
  path: string;
}

/**
 * The HTTP route of an outgoing request of the crypto machine, by its type; undefined for a
 * type the bridge does not send (key backups: the bridge keeps no server-side backup).
 */
export function routeOf(sdk: CryptoSdk, request: OutgoingRequest): RequestRoute | undefined {
  const { RequestType } = sdk;
  switch (request.type) {
    case RequestType.KeysUpload:
      return { method: "POST", path: `${CLIENT_V3}/keys/upload` };
    case RequestType.KeysQuery:
      return { method: "POST", path: `${CLIENT_V3}/keys/query` };
    case RequestType.KeysClaim:
      return { method: "POST", path: `${CLIENT_V3}/keys/claim` };
    case RequestType.SignatureUpload:
      return { method: "POST", path: `${CLIENT_V3}/keys/signatures/upload` };
    case RequestType.ToDevice: {
      const r = request as InstanceType<CryptoSdk["ToDeviceRequest"]>;
      return { method: "PUT", path: `${CLIENT_V3}/sendToDevice/${enc(r.event_type)}/${enc(r.txn_id)}` };
    }
    case RequestType.RoomMessage: {
      const r = request as InstanceType<CryptoSdk["RoomMessageRequest"]>;
      return {
        method: "PUT",
        path: `${CLIENT_V3}/rooms/${enc(r.room_id)}/send/${enc(r.event_type)}/${enc(r.txn_id)}`,
      };
    }
    default:
      return undefined;
  }
}

/** A request's name for logs: its type's name. */
export function requestName(sdk: CryptoSdk, request: OutgoingRequest): string {
  return sdk.RequestType[request.type] ?? `request type ${String(request.type)}`;
}
