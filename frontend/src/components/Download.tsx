// "Download this view": the export endpoint for the map's current bbox and layer.

import { EXPORT_FORMATS, exportUrl } from "../api";

const LABELS: Record<string, string> = { geojson: "GeoJSON", csv: "CSV", geotiff: "GeoTIFF" };

interface Props {
  bbox: [number, number, number, number] | null;
  category: string;
  window: string;
}

export function Download({ bbox, category, window }: Props) {
  if (!bbox || !(bbox[0] < bbox[2] && bbox[1] < bbox[3])) return null;
  const [first, ...others] = EXPORT_FORMATS;
  return (
    <p className="download">
      <a href={exportUrl(bbox, category, window, first)} download data-testid="download-view">
        Download this view
      </a>{" "}
      ({LABELS[first]}; also as{" "}
      {others.map((f, i) => (
        <span key={f}>
          {i > 0 && " or "}
          <a href={exportUrl(bbox, category, window, f)} download>
            {LABELS[f]}
          </a>
        </span>
      ))}
      )
    </p>
  );
}
