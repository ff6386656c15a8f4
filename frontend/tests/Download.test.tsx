import { render, screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { exportUrl, getOpening } from "../src/api";
import { initialView, WORLD_VIEW } from "../src/App";
import { DEFAULT_CONFIG } from "../src/api";
import { Download } from "../src/components/Download";
import { jsonResponse, scriptedFetch } from "./helpers";

describe("Download this view", () => {
  it("asks the export for the view's bbox and the layer's parameters", () => {
    const url = new URL(exportUrl([2.25, 48.8, 2.45, 48.9], "theft", "7d"), "http://x");
    expect(url.pathname).toBe("/api/safetyheatmap/heatmap/export");
    expect(url.searchParams.get("bbox")).toBe("2.25000,48.80000,2.45000,48.90000");
    expect(url.searchParams.get("format")).toBe("geojson");
    expect(url.searchParams.get("category")).toBe("theft");
    expect(url.searchParams.get("window")).toBe("7d");
  });

  it("offers GeoJSON first, CSV and GeoTIFF too, and follows the view", () => {
    const { rerender } = render(<Download bbox={[0, 0, 1, 1]} category="all" window="30d" />);
    const link = screen.getByRole("link", { name: "Download this view" }) as HTMLAnchorElement;
    expect(link.getAttribute("href")).toBe(
      "/api/safetyheatmap/heatmap/export?bbox=0.00000%2C0.00000%2C1.00000%2C1.00000&format=geojson&category=all&window=30d",
    );
    expect((screen.getByRole("link", { name: "CSV" }) as HTMLAnchorElement).href).toContain("format=csv");
    expect((screen.getByRole("link", { name: "GeoTIFF" }) as HTMLAnchorElement).href).toContain("format=geotiff");
    rerender(<Download bbox={[5, 6, 7, 8]} category="theft" window="all" />);
    expect(link.getAttribute("href")).toContain("bbox=5.00000%2C6.00000%2C7.00000%2C8.00000");
    expect(link.getAttribute("href")).toContain("category=theft&window=all");
  });

  it("is absent without a view", () => {
    render(<Download bbox={null} category="all" window="30d" />);
    expect(screen.queryByRole("link")).toBeNull();
  });
});

describe("the first view", () => {
  it("opens on the summary's area, the world when empty, the default when unknown", () => {
    const open = { lat: 48.85, lon: 2.35, zoom: 12 };
    expect(initialView({}, DEFAULT_CONFIG, { open })).toMatchObject(open);
    expect(initialView({}, DEFAULT_CONFIG, { open: null })).toMatchObject(WORLD_VIEW);
    expect(initialView({}, DEFAULT_CONFIG, null)).toMatchObject({ lat: 51.505, lon: -0.09, zoom: 13 });
    expect(initialView({ lat: 1, lon: 2, zoom: 5 }, DEFAULT_CONFIG, { open })).toMatchObject({ lat: 1, lon: 2 });
  });

  it("reads the summary answer", async () => {
    const { fetch } = scriptedFetch([
      jsonResponse(200, { open: { lat: 1, lon: 2, zoom: 12 }, empty: false }),
      jsonResponse(200, { open: null, empty: true }),
    ]);
    expect(await getOpening(fetch)).toEqual({ open: { lat: 1, lon: 2, zoom: 12 } });
    expect(await getOpening(fetch)).toEqual({ open: null });
  });
});
