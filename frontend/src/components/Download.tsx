// "Download this view": the export endpoint for the map's current bbox and layer.

import { ANY_TIME, EXPORT_FORMATS, exportUrl, type TimeFilter } from "../api";

const LABELS: Record<string, string> = { geojson: "GeoJSON", csv: "CSV", geotiff: "GeoTIFF" };

interface Props {
  bbox: [number, number, number, number] | null;
  category: string;
  window: string;
  /** After dark / weekends, as the map shows them; all times when absent. */
  when?: TimeFilter;
}

export function Download({ bbox, category, window, when = ANY_TIME }: Props) {
  if (!bbox || !(bbox[0] < bbox[2] && bbox[1] < bbox[3])) return null;
  const [first, ...others] = EXPORT_FORMATS;
  return (
    <p className="download">
      <a href={exportUrl(bbox, category, window, first, when)} download data-testid="download-view">
        Download this view
      </a>{" "}
      ({LABELS[first]}; also as{" "}
      {others.map((f, i) => (
        <span key={f}>
          {i > 0 && " or "}
          <a href={exportUrl(bbox, category, window, f, when)} download>
            {LABELS[f]}
          </a>
        </span>
      ))}
      )
    </p>
  );
}
