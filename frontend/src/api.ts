// Client for the SafetyHeatmap API, served by the same origin as this page.

import type { Days, Light } from "./urlState";

export const API_BASE = "/api/safetyheatmap";

export interface Category {
  id: string;
  label: string;
}

export interface Config {
  /** XYZ template for the base map; empty or null means "no base map". */
  base_tiles_url: string | null;
  base_tiles_attribution: string;
  max_zoom: number;
  bandwidth_m: number;
  privacy_min_reports: number;
  /** The privacy rule's circle, in metres: a cell shows only where that many people reported within it. */
  privacy_radius_m: number;
  windows: string[];
  description_max: number;
  /** Optional: where the map opens when the URL names no view. */
  default_center: [number, number];
  default_zoom: number;
}

export const DEFAULT_CONFIG: Config = {
  base_tiles_url: "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
  base_tiles_attribution: "© OpenStreetMap contributors",
  max_zoom: 16,
  bandwidth_m: 200,
  privacy_min_reports: 3,
  privacy_radius_m: 400,
  windows: ["7d", "30d", "365d", "all"],
  description_max: 500,
  default_center: [51.505, -0.09],
  default_zoom: 13,
};

/** The densities heatmap/get answered: `height` rows from north to south, `width` cells from west to east. */
export interface HeatmapGrid {
  /** minLon, minLat, maxLon, maxLat of the cells (snapped to the grid: a little wider than asked). */
  bbox: [number, number, number, number];
  zoom: number;
  width: number;
  height: number;
  values: number[][];
}

export interface HeatmapSummary {
  computed_at: string | null;
  max_value: number | null;
  unit: string;
  /** Zoom the answer was computed for. */
  zoom: number | null;
  /** Kernel bandwidth (m) used at that zoom. */
  bandwidth_m: number | null;
  /** Densities (reports/km²) at the ends of the tiles' colour ramp at that zoom; log scale. */
  scale: { min: number; max: number } | null;
  /** The cells themselves; null when the answer has none or they do not fit together. */
  grid: HeatmapGrid | null;
}

/** An answer from the API that was not a success, or no answer at all. */
export class ApiError extends Error {
  readonly status: number; // 0 when the request never got an answer
  readonly code: string;
  readonly body: unknown;
  readonly retryAfter: number | null;

  constructor(status: number, code: string, message: string, body: unknown, retryAfter: number | null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.body = body;
    this.retryAfter = retryAfter;
  }
}

type FetchLike = typeof fetch;

/** Seconds from a Retry-After header (delta-seconds or HTTP date); null if absent/unreadable. */
export function parseRetryAfter(value: string | null, now: number = Date.now()): number | null {
  if (value == null || value.trim() === "") return null;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number.parseInt(v, 10);
  const when = Date.parse(v);
  if (Number.isNaN(when)) return null;
  return Math.max(0, Math.ceil((when - now) / 1000));
}

async function readJson(response: Response): Promise<unknown> {
  const text = await response.text();
  if (text === "") return null;
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

export async function fetchJson<T>(path: string, init?: RequestInit, fetchImpl: FetchLike = fetch): Promise<T> {
  let response: Response;
  try {
    response = await fetchImpl(path, { credentials: "same-origin", ...init });
  } catch (err) {
    throw new ApiError(0, "network", err instanceof Error ? err.message : String(err), null, null);
  }
  const body = await readJson(response);
  if (!response.ok) {
    const obj = (body && typeof body === "object" ? body : {}) as Record<string, unknown>;
    throw new ApiError(
      response.status,
      typeof obj.error === "string" ? obj.error : `http_${response.status}`,
      typeof obj.message === "string" ? obj.message : response.statusText || `HTTP ${response.status}`,
      body,
      parseRetryAfter(response.headers.get("Retry-After")),
    );
  }
  return body as T;
}

function num(value: unknown, fallback: number): number {
  return typeof value === "number" && Number.isFinite(value) ? value : fallback;
}

/** Reads the page settings; missing or malformed fields fall back to the defaults. */
export function normaliseConfig(raw: unknown): Config {
  const c = (raw && typeof raw === "object" ? raw : {}) as Record<string, unknown>;
  const d = DEFAULT_CONFIG;
  let baseUrl: string | null = d.base_tiles_url;
  if (c.base_tiles_url === null || c.base_tiles_url === "") baseUrl = null;
  else if (typeof c.base_tiles_url === "string") baseUrl = c.base_tiles_url;
  const windows =
    Array.isArray(c.windows) && c.windows.length > 0 && c.windows.every((w) => typeof w === "string")
      ? (c.windows as string[])
      : d.windows;
  const centre =
    Array.isArray(c.default_center) &&
    c.default_center.length === 2 &&
    c.default_center.every((v) => typeof v === "number" && Number.isFinite(v))
      ? (c.default_center as [number, number])
      : d.default_center;
  return {
    base_tiles_url: baseUrl,
    base_tiles_attribution:
      typeof c.base_tiles_attribution === "string" ? c.base_tiles_attribution : d.base_tiles_attribution,
    max_zoom: Math.min(22, Math.max(1, Math.round(num(c.max_zoom, d.max_zoom)))),
    bandwidth_m: num(c.bandwidth_m, d.bandwidth_m),
    privacy_min_reports: num(c.privacy_min_reports, d.privacy_min_reports),
    privacy_radius_m: num(c.privacy_radius_m, 2 * num(c.bandwidth_m, d.bandwidth_m)),
    windows,
    description_max: Math.max(1, Math.round(num(c.description_max, d.description_max))),
    default_center: centre,
    default_zoom: Math.round(num(c.default_zoom, d.default_zoom)),
  };
}

export async function getConfig(fetchImpl: FetchLike = fetch): Promise<Config> {
  return normaliseConfig(await fetchJson<unknown>(`${API_BASE}/config`, undefined, fetchImpl));
}

export async function getCategories(fetchImpl: FetchLike = fetch): Promise<Category[]> {
  const raw = await fetchJson<unknown>(`${API_BASE}/categories`, undefined, fetchImpl);
  if (!Array.isArray(raw)) throw new ApiError(200, "bad_response", "Categories answer is not a list", raw, null);
  return raw
    .filter((c): c is Record<string, unknown> => !!c && typeof c === "object" && typeof c.id === "string")
    .map((c) => ({ id: c.id as string, label: typeof c.label === "string" ? c.label : (c.id as string) }));
}

/** When the reports happened: after dark or in daylight, on weekdays or weekends ("any": all). */
export interface TimeFilter {
  light: Light;
  days: Days;
}

export const ANY_TIME: TimeFilter = { light: "any", days: "any" };

/** Adds `light` and `days` to a query, each only when it is not "any" (the server's default). */
export function addTimeParams(params: URLSearchParams, when: TimeFilter = ANY_TIME): URLSearchParams {
  if (when.light !== "any") params.set("light", when.light);
  if (when.days !== "any") params.set("days", when.days);
  return params;
}

export interface HeatmapQuery {
  bbox: [number, number, number, number]; // minLon, minLat, maxLon, maxLat
  zoom: number;
  category: string;
  window: string;
  light?: Light;
  days?: Days;
}

function readGrid(raw: Record<string, unknown> | null): HeatmapGrid | null {
  if (!raw) return null;
  const { bbox, zoom, width, height, values } = raw;
  const finite = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);
  if (!Array.isArray(bbox) || bbox.length !== 4 || !bbox.every(finite)) return null;
  if (!finite(zoom) || !finite(width) || !finite(height) || width < 1 || height < 1) return null;
  if (!Array.isArray(values) || values.length !== height) return null;
  if (!values.every((row) => Array.isArray(row) && row.length === width)) return null;
  return {
    bbox: bbox as [number, number, number, number],
    zoom,
    width,
    height,
    values: (values as unknown[][]).map((row) => row.map((v) => (finite(v) ? v : 0))),
  };
}

export async function getHeatmapSummary(
  q: HeatmapQuery,
  signal?: AbortSignal,
  fetchImpl: FetchLike = fetch,
): Promise<HeatmapSummary> {
  const params = new URLSearchParams({
    bbox: q.bbox.map((v) => v.toFixed(5)).join(","),
    zoom: String(q.zoom),
    category: q.category,
    window: q.window,
  });
  addTimeParams(params, { light: q.light ?? "any", days: q.days ?? "any" });
  const raw = await fetchJson<Record<string, unknown>>(
    `${API_BASE}/heatmap/get?${params.toString()}`,
    { signal },
    fetchImpl,
  );
  const positive = (v: unknown): number | null => (typeof v === "number" && Number.isFinite(v) && v > 0 ? v : null);
  const scaleRaw = (raw?.scale && typeof raw.scale === "object" ? raw.scale : {}) as Record<string, unknown>;
  const lo = positive(scaleRaw.min);
  const hi = positive(scaleRaw.max);
  return {
    computed_at: typeof raw?.computed_at === "string" ? raw.computed_at : null,
    max_value: typeof raw?.max_value === "number" && Number.isFinite(raw.max_value) ? raw.max_value : null,
    unit: typeof raw?.unit === "string" ? raw.unit : "reports/km2",
    zoom: typeof raw?.zoom === "number" ? raw.zoom : null,
    bandwidth_m: positive(raw?.bandwidth_m),
    scale: lo !== null && hi !== null && hi > lo ? { min: lo, max: hi } : null,
    grid: readGrid(raw),
  };
}

/**
 * Leaflet URL template of the heatmap tiles. `version` (the heatmap's computed_at) changes the URL
 * when the heatmap is recomputed, so the browser does not show stale cached tiles.
 */
export function heatmapTileTemplate(
  category: string,
  window: string,
  version: string | null,
  when: TimeFilter = ANY_TIME,
): string {
  const params = addTimeParams(new URLSearchParams({ category, window }), when);
  if (version) params.set("v", version);
  return `${API_BASE}/heatmap/tiles/{z}/{x}/{y}.png?${params.toString()}`;
}

/** Where the page opens without a view in its URL (the worker's summary of the shown map). */
export interface Opening {
  /** The densest area the map shows; null when there are no reports yet. */
  open: { lat: number; lon: number; zoom: number } | null;
}

export async function getOpening(fetchImpl: FetchLike = fetch): Promise<Opening> {
  const raw = await fetchJson<Record<string, unknown>>(`${API_BASE}/summary`, undefined, fetchImpl);
  const o = (raw?.open && typeof raw.open === "object" ? raw.open : null) as Record<string, unknown> | null;
  const ok = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);
  return { open: o && ok(o.lat) && ok(o.lon) && ok(o.zoom) ? { lat: o.lat, lon: o.lon, zoom: o.zoom } : null };
}

export const EXPORT_FORMATS = ["geojson", "csv", "geotiff"] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

/** The export of what the map shows: the view's bbox and the layer's parameters (as heatmap/get names them). */
export function exportUrl(
  bbox: [number, number, number, number],
  category: string,
  window: string,
  format: ExportFormat = "geojson",
  when: TimeFilter = ANY_TIME,
): string {
  const params = new URLSearchParams({
    bbox: bbox.map((v) => v.toFixed(5)).join(","),
    format,
    category,
    window,
  });
  addTimeParams(params, when);
  return `${API_BASE}/heatmap/export?${params.toString()}`;
}
