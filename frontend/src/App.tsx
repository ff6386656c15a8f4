// The page: map with heatmap overlay, filters and legend, report form, privacy note.

import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import {
  type Category,
  type Config,
  DEFAULT_CONFIG,
  getCategories,
  getConfig,
  getHeatmapSummary,
  getOpening,
  type HeatmapSummary,
  type Opening,
} from "./api";
import { DensestTable } from "./components/DensestTable";
import { Download } from "./components/Download";
import { Filters } from "./components/Filters";
import { Freshness } from "./components/Freshness";
import { Legend } from "./components/Legend";
import { type LatLon, type MapApi, MapView, type ViewChange } from "./components/MapView";
import { PrivacyNote } from "./components/PrivacyNote";
import { ReportForm } from "./components/ReportForm";
import { layerDescription } from "./format";
import { scaleAtZoom, summaryZoom } from "./scale";
import { type PartialView, parseView, type ViewState, writeView } from "./urlState";

const CONFIG_TIMEOUT_MS = 5000;
const SUMMARY_REFRESH_MS = 30_000;

function withTimeout(ms: number): typeof fetch {
  return (input, init) => {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), ms);
    return fetch(input, { ...init, signal: controller.signal }).finally(() => clearTimeout(timer));
  };
}

function defaultWindow(windows: string[]): string {
  return windows.includes("30d") ? "30d" : windows[0];
}

/** Where the page opens with no reports yet: the whole world, with the first-report message. */
export const WORLD_VIEW = { lat: 20, lon: 0, zoom: 2 };

/** `opening`: the server's summary (null if it could not be read: the configured default). */
export function initialView(fromUrl: PartialView, config: Config, opening: Opening | null = null): ViewState {
  const windowOk = fromUrl.window !== undefined && config.windows.includes(fromUrl.window);
  const fallback = opening === null ? null : (opening.open ?? WORLD_VIEW);
  return {
    lat: fromUrl.lat ?? fallback?.lat ?? config.default_center[0],
    lon: fromUrl.lon ?? fallback?.lon ?? config.default_center[1],
    zoom: Math.min(fromUrl.zoom ?? fallback?.zoom ?? config.default_zoom, config.max_zoom),
    category: fromUrl.category ?? "all",
    window: windowOk ? (fromUrl.window as string) : defaultWindow(config.windows),
    light: fromUrl.light ?? "any",
    days: fromUrl.days ?? "any",
  };
}

export function App() {
  const fromUrl = useMemo(() => parseView(window.location.search), []);
  const [config, setConfig] = useState<Config | null>(null);
  const [configFailed, setConfigFailed] = useState(false);
  const [categories, setCategories] = useState<Category[] | null>(null);
  const [categoriesError, setCategoriesError] = useState<string | null>(null);
  const [view, setView] = useState<ViewState | null>(null);
  const [area, setArea] = useState<{ bbox: [number, number, number, number]; size: [number, number] } | null>(null);
  const [opacity, setOpacity] = useState(0.7);
  const [marker, setMarker] = useState<LatLon | null>(null);
  const [summary, setSummary] = useState<HeatmapSummary | null>(null);
  // The filters the summary was asked with: the table shows only an answer for the current ones.
  const [summaryKey, setSummaryKey] = useState<string | null>(null);
  const [summaryError, setSummaryError] = useState<string | null>(null);
  const [heatTilesOk, setHeatTilesOk] = useState(true);
  const [heatVersion, setHeatVersion] = useState<string | null>(null);
  // Only asked for when the URL names no place: undefined while it is on its way.
  const needsOpening = fromUrl.lat === undefined;
  const [opening, setOpening] = useState<Opening | null | undefined>(needsOpening ? undefined : null);
  const firstComputedAt = useRef(new Map<string, string | null>());
  const mapApi = useRef<MapApi | null>(null);

  // Settings first: the map's base tiles and zoom limits come from them.
  useEffect(() => {
    let live = true;
    getConfig(withTimeout(CONFIG_TIMEOUT_MS))
      .then((c) => live && setConfig(c))
      .catch(() => {
        if (!live) return;
        setConfig(DEFAULT_CONFIG);
        setConfigFailed(true);
      });
    return () => {
      live = false;
    };
  }, []);

  const loadCategories = useCallback(() => {
    setCategoriesError(null);
    getCategories(withTimeout(CONFIG_TIMEOUT_MS))
      .then((list) => setCategories(list))
      .catch(() => setCategoriesError("The categories could not be loaded."));
  }, []);
  useEffect(loadCategories, [loadCategories]);

  useEffect(() => {
    if (!needsOpening) return;
    let live = true;
    getOpening(withTimeout(CONFIG_TIMEOUT_MS))
      .then((o) => live && setOpening(o))
      .catch(() => live && setOpening(null));
    return () => {
      live = false;
    };
  }, [needsOpening]);

  useEffect(() => {
    if (config && !view && opening !== undefined) setView(initialView(fromUrl, config, opening));
  }, [config, view, fromUrl, opening]);
  const noReports = opening != null && opening.open === null;

  // Keep the URL in step with the view so that it can be shared.
  useEffect(() => {
    if (view) writeView(view);
  }, [view]);

  const onViewChange = useCallback((v: ViewChange) => {
    setArea((prev) =>
      prev && prev.bbox.every((x, i) => x === v.bbox[i]) && prev.size[0] === v.size[0] && prev.size[1] === v.size[1]
        ? prev
        : { bbox: v.bbox, size: v.size },
    );
    setView((prev) =>
      prev && (prev.lat !== v.center.lat || prev.lon !== v.center.lon || prev.zoom !== v.zoom)
        ? { ...prev, lat: v.center.lat, lon: v.center.lon, zoom: v.zoom }
        : prev,
    );
  }, []);

  // Legend maximum and computed_at for the current view and filters; refreshed now and then.
  const category = view?.category;
  const timeWindow = view?.window;
  const light = view?.light;
  const days = view?.days;
  const zoom = view?.zoom;
  useEffect(() => {
    if (!area || category === undefined || timeWindow === undefined || zoom === undefined) return;
    if (light === undefined || days === undefined) return;
    const { bbox, size } = area;
    if (!(bbox[0] < bbox[2] && bbox[1] < bbox[3])) return;
    const controller = new AbortController();
    const filterKey = `${category}|${timeWindow}|${light}|${days}`;
    const load = () => {
      getHeatmapSummary(
        { bbox, zoom: summaryZoom(zoom, size[0], size[1]), category, window: timeWindow, light, days },
        controller.signal,
      )
        .then((s) => {
          setSummary(s);
          setSummaryKey(filterKey);
          setSummaryError(null);
          // New tiles when the heatmap was recomputed since this filter was first shown.
          const seen = firstComputedAt.current;
          if (!seen.has(filterKey)) seen.set(filterKey, s.computed_at);
          setHeatVersion(s.computed_at !== seen.get(filterKey) ? s.computed_at : null);
        })
        .catch((err: unknown) => {
          if (controller.signal.aborted) return;
          setSummaryError(
            err instanceof Error && /offline|network|fetch/i.test(err.message)
              ? "Heatmap status unavailable: offline?"
              : "Heatmap status unavailable",
          );
        });
    };
    const debounce = setTimeout(load, 300);
    const timer = setInterval(load, SUMMARY_REFRESH_MS);
    return () => {
      controller.abort();
      clearTimeout(debounce);
      clearInterval(timer);
    };
  }, [area, category, timeWindow, light, days, zoom]);

  const onLocationChange = useCallback((where: LatLon | null, source: "gps" | "centre" | "reset") => {
    setMarker(where);
    if (where && source === "gps") mapApi.current?.setView(where.lat, where.lon);
  }, []);

  const cfg = config ?? DEFAULT_CONFIG;
  // The colour ramp's ends at the map's zoom (the tiles' zoom), for the legend.
  const legendScale =
    summary?.scale && summary.bandwidth_m && view
      ? scaleAtZoom(summary.scale, summary.bandwidth_m, cfg.bandwidth_m, view.zoom, view.lat)
      : null;
  const categoryLabel =
    !view || view.category === "all"
      ? null
      : ((categories ?? []).find((c) => c.id === view.category)?.label ?? view.category);
  const currentKey = view ? `${view.category}|${view.window}|${view.light}|${view.days}` : null;
  const tableSummary = summary !== null && summaryKey === currentKey ? summary : null;
  const description = view ? layerDescription(categoryLabel, view.window, view.light, view.days) : "";

  return (
    <>
      <a className="skip-link" href="#report">
        Skip to the report form
      </a>
      <header className="app-header">
        <h1>SafetyHeatmap</h1>
        <p>Mark places where you felt unsafe, and see where reports cluster.</p>
      </header>
      <main className="layout">
        <div className="map-pane">
          {config && view ? (
            <MapView
              config={config}
              initialView={view}
              category={view.category}
              window={view.window}
              light={view.light}
              days={view.days}
              opacity={opacity}
              heatVersion={heatVersion}
              marker={marker}
              onPick={(where) => setMarker(where)}
              onViewChange={onViewChange}
              onHeatTiles={setHeatTilesOk}
              apiRef={mapApi}
            />
          ) : (
            <div className="map map-loading">Loading the map…</div>
          )}
        </div>
        <div className="panel">
          {configFailed && (
            <p className="notice" role="alert">
              The server could not be reached. The heatmap may be missing and reports cannot be sent until it is back.
            </p>
          )}
          {noReports && (
            <p className="notice first-report" role="status">
              No reports yet. Be the first: pick the place on the map, or use your location, and send it with{" "}
              <a href="#report">the report form</a>.
            </p>
          )}
          <section className="card" aria-labelledby="heatmap-title">
            <h2 id="heatmap-title">Heatmap</h2>
            {view && (
              <Filters
                categories={categories}
                windows={cfg.windows}
                category={view.category}
                window={view.window}
                light={view.light}
                days={view.days}
                opacity={opacity}
                onCategory={(c) => setView((v) => (v ? { ...v, category: c } : v))}
                onWindow={(w) => setView((v) => (v ? { ...v, window: w } : v))}
                onLight={(l) => setView((v) => (v ? { ...v, light: l } : v))}
                onDays={(d) => setView((v) => (v ? { ...v, days: d } : v))}
                onOpacity={setOpacity}
              />
            )}
            <Legend
              description={description}
              scale={legendScale}
              maxValue={summary?.max_value ?? null}
              loaded={summary !== null}
              bandwidthM={cfg.bandwidth_m}
              minReports={cfg.privacy_min_reports}
              radiusM={cfg.privacy_radius_m}
            />
            <Freshness computedAt={summary?.computed_at ?? null} error={summaryError} />
            {!heatTilesOk && <p className="field-error">Some heatmap tiles could not be loaded.</p>}
            {view && (
              <DensestTable
                grid={tableSummary?.grid ?? null}
                view={area?.bbox ?? null}
                loaded={tableSummary !== null}
                failed={tableSummary === null && summaryError !== null}
                description={description}
                onShow={(lat, lon) => mapApi.current?.setView(lat, lon, view.zoom)}
              />
            )}
            {view && (
              <Download
                bbox={area?.bbox ?? null}
                category={view.category}
                window={view.window}
                when={{ light: view.light, days: view.days }}
              />
            )}
          </section>
          <section className="card" id="report" tabIndex={-1}>
            <ReportForm
              categories={categories}
              categoriesError={categoriesError}
              onRetryCategories={loadCategories}
              descriptionMax={cfg.description_max}
              location={marker}
              onLocationChange={onLocationChange}
              getMapCentre={() => mapApi.current?.getCenter() ?? null}
            />
          </section>
          <div className="card">
            <PrivacyNote
              bandwidthM={cfg.bandwidth_m}
              minReports={cfg.privacy_min_reports}
              radiusM={cfg.privacy_radius_m}
            />
          </div>
        </div>
      </main>
    </>
  );
}
