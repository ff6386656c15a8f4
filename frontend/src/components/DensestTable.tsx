// The heatmap as a table: the densest places in the map's view, for screen readers and for
// anyone who would rather read than look. Behind a "Show as table" button (aria-expanded);
// "Show on map" centres the map on a row's place, keeping the zoom.

import { useId, useState } from "react";
import type { HeatmapGrid } from "../api";
import { densestCells } from "../densest";
import { formatDensity, formatLatLon } from "../format";
import "./DensestTable.css";

export const TABLE_ROWS = 10;

export interface DensestTableProps {
  /** heatmap/get's cells for the view; null while unknown. */
  grid: HeatmapGrid | null;
  /** The map's view: minLon, minLat, maxLon, maxLat. */
  view: [number, number, number, number] | null;
  loaded: boolean;
  /** heatmap/get failed for these filters (and nothing is loaded). */
  failed?: boolean;
  /** What the layer shows, in words (the legend's). */
  description: string;
  onShow: (lat: number, lon: number) => void;
}

export function DensestTable({ grid, view, loaded, failed = false, description, onShow }: DensestTableProps) {
  const [open, setOpen] = useState(false);
  const [centred, setCentred] = useState<string | null>(null);
  const id = useId();
  const cells = densestCells(grid, view, TABLE_ROWS);
  return (
    <div className="densest">
      <button
        type="button"
        aria-expanded={open}
        aria-controls={`${id}-table`}
        onClick={() => {
          setOpen(!open);
          setCentred(null);
        }}
      >
        {open ? "Hide the table" : "Show as table"}
      </button>
      <div id={`${id}-table`} hidden={!open}>
        {open &&
          (failed ? (
            <p className="field-error">The densest places in this view could not be loaded.</p>
          ) : !loaded ? (
            <p className="hint">Loading the densest places in this view…</p>
          ) : cells.length === 0 ? (
            <p className="hint" data-testid="densest-empty">
              No place in this view has enough reports to show with these filters. Zoom out, move the map or
              choose other filters.
            </p>
          ) : (
            <div className="table-scroll">
              <table className="densest-table">
                <caption>
                  Densest places in this view ({cells.length === 1 ? "1 place" : `up to ${TABLE_ROWS}`}): {description}
                </caption>
                <thead>
                  <tr>
                    <th scope="col">Rank</th>
                    <th scope="col">Place</th>
                    <th scope="col">Reports per km²</th>
                    <th scope="col">
                      <span className="visually-hidden">Map</span>
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {cells.map((c, i) => {
                    const place = formatLatLon(c.lat, c.lon);
                    return (
                      <tr key={`${c.lat},${c.lon}`}>
                        <th scope="row">{i + 1}</th>
                        <td>{place}</td>
                        <td className="num">about {formatDensity(c.value)}</td>
                        <td>
                          <button
                            type="button"
                            className="link-button"
                            onClick={() => {
                              onShow(c.lat, c.lon);
                              setCentred(place);
                            }}
                          >
                            Show on map<span className="visually-hidden">: place {i + 1}</span>
                          </button>
                        </td>
                      </tr>
                    );
                  })}
                </tbody>
              </table>
            </div>
          ))}
        <p className="visually-hidden" role="status">
          {centred ? `The map is centred on ${centred}.` : ""}
        </p>
      </div>
    </div>
  );
}
