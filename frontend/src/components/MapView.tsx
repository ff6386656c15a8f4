// The Leaflet map: base tiles (optional), the heatmap tile overlay and the report marker.

import L from "leaflet";
import iconRetinaUrl from "leaflet/dist/images/marker-icon-2x.png";
import iconUrl from "leaflet/dist/images/marker-icon.png";
import shadowUrl from "leaflet/dist/images/marker-shadow.png";
import { type RefObject, useEffect, useRef } from "react";
import { type Config, heatmapTileTemplate } from "../api";
import type { Days, Light } from "../urlState";

export interface LatLon {
  lat: number;
  lon: number;
}

export interface ViewChange {
  center: LatLon;
  zoom: number;
  /** minLon, minLat, maxLon, maxLat */
  bbox: [number, number, number, number];
  /** Map size in CSS pixels. */
  size: [number, number];
}

export interface MapApi {
  getCenter(): LatLon;
  setView(lat: number, lon: number, zoom?: number): void;
}

export interface MapViewProps {
  config: Config;
  initialView: { lat: number; lon: number; zoom: number };
  category: string;
  window: string;
  light: Light;
  days: Days;
  opacity: number; // 0..1
  heatVersion: string | null;
  marker: LatLon | null;
  onPick: (where: LatLon) => void;
  onViewChange: (view: ViewChange) => void;
  onHeatTiles: (ok: boolean) => void;
  apiRef: RefObject<MapApi | null>;
}

const markerIcon = L.icon({
  iconUrl,
  iconRetinaUrl,
  shadowUrl,
  iconSize: [25, 41],
  iconAnchor: [12, 41],
  popupAnchor: [1, -34],
  tooltipAnchor: [16, -28],
  shadowSize: [41, 41],
});

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

/** Attribution text from the settings, shown as text (not HTML); OpenStreetMap links to its licence. */
export function attributionHtml(text: string): string {
  const safe = escapeHtml(text);
  return safe.replace(
    /OpenStreetMap/,
    '<a href="https://www.openstreetmap.org/copyright" rel="noopener noreferrer" target="_blank">OpenStreetMap</a>',
  );
}

function clampLat(v: number): number {
  return Math.max(-90, Math.min(90, v));
}

function clampLon(v: number): number {
  return Math.max(-180, Math.min(180, v));
}

function viewOf(map: L.Map): ViewChange {
  const c = map.getCenter().wrap();
  const b = map.getBounds();
  return {
    center: { lat: c.lat, lon: c.lng },
    zoom: map.getZoom(),
    bbox: [clampLon(b.getWest()), clampLat(b.getSouth()), clampLon(b.getEast()), clampLat(b.getNorth())],
    size: [map.getSize().x, map.getSize().y],
  };
}

export function MapView(props: MapViewProps) {
  const { config, initialView, category, window: timeWindow, light, days, opacity, heatVersion, marker, apiRef } = props;
  const containerRef = useRef<HTMLDivElement | null>(null);
  const mapRef = useRef<L.Map | null>(null);
  const heatRef = useRef<L.TileLayer | null>(null);
  const baseRef = useRef<L.TileLayer | null>(null);
  const markerRef = useRef<L.Marker | null>(null);
  // Latest callbacks, read by Leaflet's handlers.
  const callbacks = useRef(props);
  callbacks.current = props;

  // Create the map once.
  useEffect(() => {
    const el = containerRef.current;
    if (!el) return;
    const map = L.map(el, {
      center: [initialView.lat, initialView.lon],
      zoom: Math.min(initialView.zoom, config.max_zoom),
      minZoom: 2,
      maxZoom: config.max_zoom,
      worldCopyJump: true,
      keyboard: true,
    });
    mapRef.current = map;
    map.attributionControl.setPrefix(
      '<a href="https://leafletjs.com" rel="noopener noreferrer" target="_blank">Leaflet</a>',
    );

    const heat = L.tileLayer(heatmapTileTemplate(category, timeWindow, heatVersion, { light, days }), {
      opacity,
      maxZoom: config.max_zoom,
      zIndex: 10,
      className: "heatmap-layer",
      keepBuffer: 1,
    });
    let errors = 0;
    heat.on("loading", () => {
      errors = 0;
    });
    heat.on("tileerror", () => {
      errors += 1;
    });
    heat.on("load", () => callbacks.current.onHeatTiles(errors === 0));
    heat.addTo(map);
    heatRef.current = heat;

    map.on("click", (e: L.LeafletMouseEvent) => {
      const p = e.latlng.wrap();
      callbacks.current.onPick({ lat: p.lat, lon: p.lng });
    });
    map.on("moveend resize", () => callbacks.current.onViewChange(viewOf(map)));

    apiRef.current = {
      getCenter: () => {
        const c = map.getCenter().wrap();
        return { lat: c.lat, lon: c.lng };
      },
      setView: (lat, lon, zoom) => map.setView([lat, lon], zoom ?? Math.max(map.getZoom(), 15)),
    };

    let observer: ResizeObserver | null = null;
    if (typeof ResizeObserver !== "undefined") {
      observer = new ResizeObserver(() => map.invalidateSize());
      observer.observe(el);
    }
    callbacks.current.onViewChange(viewOf(map));

    return () => {
      observer?.disconnect();
      apiRef.current = null;
      map.remove();
      mapRef.current = null;
      heatRef.current = null;
      baseRef.current = null;
      markerRef.current = null;
    };
    // The map is created once; later prop changes are applied by the effects below.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);

  // Base map: from the settings; none when the URL is empty.
  useEffect(() => {
    const map = mapRef.current;
    if (!map) return;
    if (baseRef.current) {
      baseRef.current.remove();
      baseRef.current = null;
    }
    if (config.base_tiles_url) {
      const base = L.tileLayer(config.base_tiles_url, {
        attribution: attributionHtml(config.base_tiles_attribution),
        maxZoom: config.max_zoom,
        zIndex: 1,
        className: "base-layer",
      });
      base.addTo(map);
      baseRef.current = base;
    }
    map.setMaxZoom(config.max_zoom);
  }, [config.base_tiles_url, config.base_tiles_attribution, config.max_zoom]);

  useEffect(() => {
    heatRef.current?.setUrl(heatmapTileTemplate(category, timeWindow, heatVersion, { light, days }));
  }, [category, timeWindow, light, days, heatVersion]);

  useEffect(() => {
    heatRef.current?.setOpacity(opacity);
  }, [opacity]);

  useEffect(() => {
    const map = mapRef.current;
    if (!map) return;
    if (!marker) {
      markerRef.current?.remove();
      markerRef.current = null;
      return;
    }
    if (markerRef.current) {
      markerRef.current.setLatLng([marker.lat, marker.lon]);
      return;
    }
    const m = L.marker([marker.lat, marker.lon], {
      icon: markerIcon,
      draggable: true,
      autoPan: true,
      keyboard: true,
      title: "Report location (drag to move)",
      alt: "Report location",
      zIndexOffset: 1000,
    });
    m.on("dragend", () => {
      const p = m.getLatLng().wrap();
      callbacks.current.onPick({ lat: p.lat, lon: p.lng });
    });
    m.addTo(map);
    markerRef.current = m;
  }, [marker]);

  return (
    <div
      ref={containerRef}
      className="map"
      id="map"
      role="region"
      aria-label="Map: drag or use the arrow keys to move, + and − to zoom. Click or tap to place your report."
    />
  );
}
