import { render, screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { App } from "../src/App";
import { jsonResponse } from "./helpers";

const config = {
  base_tiles_url: "",
  base_tiles_attribution: "© OpenStreetMap contributors",
  max_zoom: 16,
  bandwidth_m: 200,
  privacy_min_reports: 3,
  windows: ["7d", "30d", "365d", "all"],
  description_max: 500,
};
const categories = [
  { id: "harassment", label: "Harassment" },
  { id: "theft", label: "Theft" },
];

function api(url: string): Response {
  if (url.endsWith("/config")) return jsonResponse(200, config);
  if (url.endsWith("/categories")) return jsonResponse(200, categories);
  if (url.includes("/heatmap/get")) {
    return jsonResponse(200, {
      bbox: [0, 0, 1, 1],
      zoom: 9,
      width: 1,
      height: 1,
      values: [[0]],
      unit: "reports/km2",
      bandwidth_m: 200,
      computed_at: new Date(Date.now() - 5000).toISOString(),
      category: "all",
      window: "30d",
      max_value: 12.5,
      scale: { min: 1.989, max: 1194 },
    });
  }
  return new Response("not found", { status: 404 });
}

describe("App", () => {
  beforeEach(() => {
    window.history.replaceState(null, "", "/?lat=48.85&lon=2.35&z=12&category=theft&window=7d");
    // jsdom lays nothing out; give the map a size so that Leaflet has a view.
    vi.spyOn(HTMLElement.prototype, "clientWidth", "get").mockReturnValue(800);
    vi.spyOn(HTMLElement.prototype, "clientHeight", "get").mockReturnValue(600);
  });
  afterEach(() => {
    vi.unstubAllGlobals();
    vi.restoreAllMocks();
  });

  it("does not crash when the API is absent", async () => {
    vi.stubGlobal("fetch", vi.fn(async () => Promise.reject(new TypeError("Failed to fetch"))));
    render(<App />);
    expect(await screen.findByText(/server could not be reached/)).toBeTruthy();
    expect(await screen.findByText("The categories could not be loaded.")).toBeTruthy();
    expect(screen.getByRole("button", { name: "Submit report" })).toBeTruthy();
    expect(screen.getByRole("heading", { name: "Privacy" })).toBeTruthy();
    // The map is there (with the default settings), as are the heatmap controls.
    await waitFor(() => expect(document.querySelector(".leaflet-container")).not.toBeNull());
    expect(screen.getByLabelText("Time window")).toBeTruthy();
  });

  it("reads the view from the URL, shows the legend maximum and keeps filters in the URL", async () => {
    const fetchMock = vi.fn(async (input: RequestInfo | URL) => api(String(input)));
    vi.stubGlobal("fetch", fetchMock);
    const user = userEvent.setup();
    render(<App />);
    const show = (await screen.findByLabelText("Show on map")) as HTMLSelectElement;
    await waitFor(() => expect(show.value).toBe("theft"));
    expect((screen.getByLabelText("Time window") as HTMLSelectElement).value).toBe("7d");
    await waitFor(() => expect(screen.getByText(/Highest in this view: about 13 reports per km²/)).toBeTruthy());
    // The colour ramp's ends at the map's zoom (log scale; the middle is the geometric mean).
    expect(screen.getByText("1,194+")).toBeTruthy();
    expect(screen.getByText("49")).toBeTruthy();
    expect(screen.getByText(/below 2\.0 reports per km² there is no colour/)).toBeTruthy();
    expect(screen.getByText(/Heatmap updated \d+ s ago/)).toBeTruthy();
    // No base map when the setting is empty; the heatmap layer asks for the chosen filters.
    expect(document.querySelector(".base-layer")).toBeNull();
    const heat = document.querySelector(".heatmap-layer img") as HTMLImageElement | null;
    if (heat) expect(heat.src).toContain("category=theft&window=7d");

    await user.selectOptions(screen.getByLabelText("Time window"), "all");
    await user.selectOptions(show, "harassment");
    await waitFor(() => expect(window.location.search).toContain("category=harassment"));
    expect(window.location.search).toContain("window=all");
    expect(window.location.search).toContain("z=12");
    const gets = () => fetchMock.mock.calls.map((c) => String(c[0])).filter((u) => u.includes("/heatmap/get"));
    expect(gets()[0]).toMatch(/bbox=[-\d.]+(%2C[-\d.]+){3}&zoom=8&category=theft&window=7d/);
    await waitFor(() => expect(gets().some((u) => /category=harassment&window=all/.test(u))).toBe(true));
  });
});
