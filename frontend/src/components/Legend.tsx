// What the heatmap's colours mean: a log scale of reports per km².

import { formatDensity } from "../format";
import type { Scale } from "../scale";

export interface LegendProps {
  /** What the layer shows, in words: "Harassment, after dark, weekends, last 30 days". */
  description: string;
  /** Densities at the ends of the colour ramp at the map's zoom; null until known. */
  scale: Scale | null;
  /** Highest density in the current view (heatmap/get), null until known. */
  maxValue: number | null;
  loaded: boolean;
  bandwidthM: number;
  minReports: number;
  radiusM: number;
}

export function Legend({ description, scale, maxValue, loaded, bandwidthM, minReports, radiusM }: LegendProps) {
  const hasData = maxValue !== null && maxValue > 0;
  const low = scale ? formatDensity(scale.min) : null;
  const mid = scale ? formatDensity(Math.sqrt(scale.min * scale.max)) : null;
  const high = scale ? formatDensity(scale.max) : null;
  const barLabel = scale
    ? `Colour scale, logarithmic: dark purple at ${low}, teal at ${mid}, yellow at ${high} reports per km² or more`
    : "Colour scale: dark purple for few reports per km², yellow for many";
  return (
    <figure className="legend" aria-labelledby="legend-title">
      <figcaption id="legend-title">
        <span className="legend-layer" data-testid="legend-layer">
          {description}
        </span>
        <span className="legend-unit">Reports per km²</span>
      </figcaption>
      <div className="legend-bar" role="img" aria-label={barLabel} />
      <div className="legend-scale" aria-hidden="true">
        <span>{low ?? "few"}</span>
        {mid && <span>{mid}</span>}
        <span>{high ? `${high}+` : "many"}</span>
      </div>
      <p className="hint legend-note">
        {scale ? `Logarithmic scale; below ${low} reports per km² there is no colour. ` : ""}
        {hasData
          ? `Highest in this view: about ${formatDensity(maxValue)} reports per km².`
          : loaded
            ? "No reports to show in this view with these filters."
            : ""}
      </p>
      <p className="hint">
        Each report is spread over about {Math.round(bandwidthM)} m; a place stays blank unless at least {minReports}{" "}
        different people reported within {Math.round(radiusM)} m of it.
      </p>
    </figure>
  );
}
