// Small text helpers.

const WINDOW_LABELS: Record<string, string> = {
  "24h": "Last 24 hours",
  "7d": "Last 7 days",
  "30d": "Last 30 days",
  "90d": "Last 90 days",
  "365d": "Last 12 months",
  all: "All time",
};

export function windowLabel(id: string): string {
  if (WINDOW_LABELS[id]) return WINDOW_LABELS[id];
  const m = /^(\d+)([hdwy])$/.exec(id);
  if (m) {
    const n = Number(m[1]);
    const unit = { h: "hour", d: "day", w: "week", y: "year" }[m[2] as "h" | "d" | "w" | "y"];
    return `Last ${n} ${unit}${n === 1 ? "" : "s"}`;
  }
  return id;
}

/** "updated 12 s ago", "updated 5 min ago", ... from computed_at. */
export function updatedAgo(computedAt: string | null, now: number): string {
  if (!computedAt) return "No heatmap data for this area yet";
  const t = Date.parse(computedAt);
  if (Number.isNaN(t)) return "Heatmap update time unknown";
  const s = Math.max(0, Math.round((now - t) / 1000));
  if (s < 120) return `Heatmap updated ${s} s ago`;
  const min = Math.round(s / 60);
  if (min < 120) return `Heatmap updated ${min} min ago`;
  const h = Math.round(min / 60);
  if (h < 48) return `Heatmap updated ${h} h ago`;
  return `Heatmap updated ${Math.round(h / 24)} days ago`;
}

/** Density for the legend: 2 significant digits, no exponent. */
export function formatDensity(v: number): string {
  if (!Number.isFinite(v) || v <= 0) return "0";
  if (v >= 1000) return Math.round(v).toLocaleString("en-US");
  if (v >= 100) return String(Math.round(v));
  if (v >= 10) return v.toFixed(0);
  if (v >= 1) return v.toFixed(1);
  return v.toPrecision(2);
}

/** The filters' choices, as the page offers them. */
export const LIGHT_LABELS: Record<string, string> = {
  any: "Any time of day",
  daylight: "In daylight",
  dark: "After dark",
};
export const DAYS_LABELS: Record<string, string> = { any: "Any day", weekdays: "Weekdays", weekends: "Weekends" };

/**
 * What the heatmap shows, in words: "Harassment, after dark, weekends, last 30 days",
 * "All reports, last 30 days". `categoryLabel` is null for all categories.
 */
export function layerDescription(categoryLabel: string | null, window: string, light: string, days: string): string {
  const parts = [categoryLabel ?? "All reports"];
  if (light === "daylight") parts.push("in daylight");
  else if (light === "dark") parts.push("after dark");
  if (days === "weekdays" || days === "weekends") parts.push(days);
  const win = windowLabel(window);
  parts.push(win.charAt(0).toLowerCase() + win.slice(1));
  return parts.join(", ");
}

/** "51.50500° N, 0.09000° W": a place, as the table of densest places names it. */
export function formatLatLon(lat: number, lon: number, digits = 4): string {
  const ns = lat >= 0 ? "N" : "S";
  const ew = lon >= 0 ? "E" : "W";
  return `${Math.abs(lat).toFixed(digits)}° ${ns}, ${Math.abs(lon).toFixed(digits)}° ${ew}`;
}
