// The view (centre, zoom, filters) lives in the page URL so that a link can be shared:
//   /?lat=51.50500&lon=-0.09000&z=13&category=theft&window=30d&light=dark&days=weekends
// `light` and `days` are left out of the URL while they are "any", so older links stay the same.

export const LIGHTS = ["any", "daylight", "dark"] as const;
export const DAYS = ["any", "weekdays", "weekends"] as const;
export type Light = (typeof LIGHTS)[number];
export type Days = (typeof DAYS)[number];

export interface ViewState {
  lat: number;
  lon: number;
  zoom: number;
  category: string; // a category id or "all"
  window: string; // one of the config's windows
  light: Light;
  days: Days;
}

export type PartialView = Partial<ViewState>;

function finite(text: string | null): number | null {
  if (text === null || text.trim() === "") return null;
  const v = Number(text);
  return Number.isFinite(v) ? v : null;
}

/** Reads what the URL says; values that make no sense are left out (the defaults apply). */
export function parseView(search: string): PartialView {
  const p = new URLSearchParams(search);
  const view: PartialView = {};
  const lat = finite(p.get("lat"));
  const lon = finite(p.get("lon"));
  if (lat !== null && lon !== null && Math.abs(lat) <= 85.06 && Math.abs(lon) <= 180) {
    view.lat = lat;
    view.lon = lon;
  }
  const z = finite(p.get("z"));
  if (z !== null && z >= 0 && z <= 22) view.zoom = Math.round(z);
  const category = p.get("category");
  if (category && /^[A-Za-z0-9_-]{1,64}$/.test(category)) view.category = category;
  const win = p.get("window");
  if (win && /^[A-Za-z0-9_-]{1,16}$/.test(win)) view.window = win;
  const light = p.get("light");
  if (light && (LIGHTS as readonly string[]).includes(light)) view.light = light as Light;
  const days = p.get("days");
  if (days && (DAYS as readonly string[]).includes(days)) view.days = days as Days;
  return view;
}

/** The query string for a view; other parameters already in `search` are kept. */
export function formatView(view: ViewState, search = ""): string {
  const p = new URLSearchParams(search);
  const digits = Math.max(2, Math.min(6, Math.ceil((view.zoom * Math.LN2) / Math.LN10) + 1));
  p.set("lat", view.lat.toFixed(digits));
  p.set("lon", view.lon.toFixed(digits));
  p.set("z", String(view.zoom));
  p.set("category", view.category);
  p.set("window", view.window);
  for (const [key, value] of [
    ["light", view.light],
    ["days", view.days],
  ] as const) {
    if (value === "any") p.delete(key);
    else p.set(key, value);
  }
  return `?${p.toString()}`;
}

/** Replaces the URL without adding a history entry per pan. */
export function writeView(view: ViewState): void {
  const next = formatView(view, window.location.search);
  if (next !== window.location.search) {
    window.history.replaceState(window.history.state, "", `${window.location.pathname}${next}${window.location.hash}`);
  }
}
