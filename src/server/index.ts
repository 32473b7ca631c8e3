/** The node's HTTP API (docs/api.md): createServer and what its callers and tests reuse. */
export { createServer, type MedledgerServer, type RouteInfo, type ServerOptions } from "./app.ts";
export { buildHistoryPage, type HistoryPageJson, type HistoryQuery } from "./history.ts";
export { DEFAULT_LIMITS, type ServerLimits } from "./limits.ts";
export { HTTP_STATUS } from "./errors.ts";
