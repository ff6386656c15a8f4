// Which reports the heatmap shows, and how strongly it covers the map.

import type { Category } from "../api";
import { windowLabel } from "../format";

export interface FiltersProps {
  categories: Category[] | null;
  windows: string[];
  category: string;
  window: string;
  opacity: number; // 0..1
  onCategory: (id: string) => void;
  onWindow: (id: string) => void;
  onOpacity: (value: number) => void;
}

export function Filters(props: FiltersProps) {
  const { categories, windows, category, window: timeWindow, opacity } = props;
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
