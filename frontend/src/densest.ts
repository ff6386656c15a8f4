// The densest cells of a heatmap/get answer that lie in the map's view, for the table view.
//
// heatmap/get answers a Web Mercator grid: `height` rows from north to south and `width` cells
// from west to east, its bbox the cells' outer edges (snapped to the grid, so a little wider
// than the view asked). A cell counts as in view when its centre is inside the view's bbox.

import type { HeatmapGrid } from "./api";

export interface DenseCell {
  lat: number;
  lon: number;
  /** reports/km² */
  value: number;
}

function mercY(lat: number): number {
  const r = (lat * Math.PI) / 180;
  return Math.log(Math.tan(Math.PI / 4 + r / 2));
}

function mercLat(y: number): number {
  return (Math.atan(Math.sinh(y)) * 180) / Math.PI;
}

/** Up to `limit` cells with reports, densest first, whose centres lie in `view` (minLon, minLat, maxLon, maxLat). */
export function densestCells(
  grid: HeatmapGrid | null,
  view: [number, number, number, number] | null,
  limit = 10,
): DenseCell[] {
  if (!grid || !view) return [];
  const [west, south, east, north] = grid.bbox;
  if (!(east > west && north > south)) return [];
  const yNorth = mercY(north);
  const ySouth = mercY(south);
  const cells: DenseCell[] = [];
  for (let r = 0; r < grid.height; r++) {
    const row = grid.values[r];
    const lat = mercLat(yNorth + ((r + 0.5) / grid.height) * (ySouth - yNorth));
    if (lat < view[1] || lat > view[3]) continue;
    for (let c = 0; c < grid.width; c++) {
      const value = row[c];
      if (!(value > 0)) continue;
      const lon = west + ((c + 0.5) / grid.width) * (east - west);
      if (lon < view[0] || lon > view[2]) continue;
      cells.push({ lat, lon, value });
    }
  }
  // Densest first; ties north to south, then west to east (the grid's order), so rows are stable.
  cells.sort((a, b) => b.value - a.value || b.lat - a.lat || a.lon - b.lon);
  return cells.slice(0, Math.max(0, limit));
}
