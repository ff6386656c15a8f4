// Which reports the heatmap shows, and how strongly it covers the map.

import type { Category } from "../api";
import { DAYS_LABELS, LIGHT_LABELS, windowLabel } from "../format";
import { DAYS, type Days, type Light, LIGHTS } from "../urlState";

export interface FiltersProps {
  categories: Category[] | null;
  windows: string[];
  category: string;
  window: string;
  light: Light;
  days: Days;
  opacity: number; // 0..1
  onCategory: (id: string) => void;
  onWindow: (id: string) => void;
  onLight: (value: Light) => void;
  onDays: (value: Days) => void;
  onOpacity: (value: number) => void;
}

export function Filters(props: FiltersProps) {
  const { categories, windows, category, window: timeWindow, light, days, opacity } = props;
  const known = category === "all" || (categories ?? []).some((c) => c.id === category);
  return (
    <div className="filters">
      <div className="field">
        <label htmlFor="filter-category">Show on map</label>
        <select id="filter-category" value={category} onChange={(e) => props.onCategory(e.target.value)}>
          <option value="all">All kinds of report</option>
          {(categories ?? []).map((c) => (
            <option key={c.id} value={c.id}>
              {c.label}
            </option>
          ))}
          {!known && <option value={category}>{category}</option>}
        </select>
      </div>
      <div className="field">
        <label htmlFor="filter-window">Time window</label>
        <select id="filter-window" value={timeWindow} onChange={(e) => props.onWindow(e.target.value)}>
          {windows.map((w) => (
            <option key={w} value={w}>
              {windowLabel(w)}
            </option>
          ))}
        </select>
      </div>
      <div className="field">
        <label htmlFor="filter-light">Time of day</label>
        <select id="filter-light" value={light} onChange={(e) => props.onLight(e.target.value as Light)}>
          {LIGHTS.map((l) => (
            <option key={l} value={l}>
              {LIGHT_LABELS[l]}
            </option>
          ))}
        </select>
      </div>
      <div className="field">
        <label htmlFor="filter-days">Days</label>
        <select id="filter-days" value={days} onChange={(e) => props.onDays(e.target.value as Days)}>
          {DAYS.map((d) => (
            <option key={d} value={d}>
              {DAYS_LABELS[d]}
            </option>
          ))}
        </select>
      </div>
      <div className="field">
        <label htmlFor="filter-opacity">Heatmap opacity</label>
        <div className="range-row">
          <input
            id="filter-opacity"
            type="range"
            min={0}
            max={100}
            step={5}
            value={Math.round(opacity * 100)}
            aria-valuetext={`${Math.round(opacity * 100)} percent`}
            onChange={(e) => props.onOpacity(Number(e.target.value) / 100)}
          />
          <span className="range-value" aria-hidden="true">
            {Math.round(opacity * 100)}%
          </span>
        </div>
      </div>
    </div>
  );
}
