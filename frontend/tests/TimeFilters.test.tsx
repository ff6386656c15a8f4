import { render, screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { exportUrl, getHeatmapSummary, heatmapTileTemplate } from "../src/api";
import { App } from "../src/App";
import { Filters } from "../src/components/Filters";
import { Legend } from "../src/components/Legend";
import { layerDescription } from "../src/format";
import { formatView, parseView } from "../src/urlState";
import { jsonResponse, scriptedFetch } from "./helpers";

const base = { lat: 51.5, lon: -0.09, zoom: 13, category: "all", window: "30d" } as const;

describe("light and days in the URL", () => {
  it("are left out while they are 'any', so today's URLs stay the same", () => {
    expect(formatView({ ...base, light: "any", days: "any" })).toBe(
      "?lat=51.50000&lon=-0.09000&z=13&category=all&window=30d",
    );
    const q = new URLSearchParams(formatView({ ...base, light: "dark", days: "weekends" }));
    expect(q.get("light")).toBe("dark");
    expect(q.get("days")).toBe("weekends");
    // Back to "any": the parameter goes away again, even when the URL had it.
    expect(formatView({ ...base, light: "any", days: "weekdays" }, "?light=dark&days=weekends")).not.toContain(
      "light=",
    );
  });

  it("are read back, and nonsense is ignored", () => {
    expect(parseView("?light=daylight&days=weekdays")).toEqual({ light: "daylight", days: "weekdays" });
    expect(parseView("?light=night&days=sunday")).toEqual({});
    expect(parseView("?light=any&days=any")).toEqual({ light: "any", days: "any" });
  });
});

describe("light and days in the API calls", () => {
  it("go to the tiles and the export only when not 'any'", () => {
    expect(heatmapTileTemplate("theft", "7d", null)).toBe(
      "/api/safetyheatmap/heatmap/tiles/{z}/{x}/{y}.png?category=theft&window=7d",
    );
    expect(heatmapTileTemplate("theft", "7d", "v1", { light: "dark", days: "weekends" })).toBe(
      "/api/safetyheatmap/heatmap/tiles/{z}/{x}/{y}.png?category=theft&window=7d&light=dark&days=weekends&v=v1",
    );
    const url = new URL(exportUrl([0, 0, 1, 1], "all", "30d", "csv", { light: "daylight", days: "any" }), "http://x");
    expect(url.searchParams.get("light")).toBe("daylight");
    expect(url.searchParams.has("days")).toBe(false);
    expect(exportUrl([0, 0, 1, 1], "all", "30d")).not.toMatch(/light|days/);
  });

  it("go to heatmap/get, whose cells are kept for the table", async () => {
    const answer = { bbox: [0, 0, 2, 1], zoom: 9, width: 2, height: 1, values: [[0, 3.5]], max_value: 3.5 };
    const { fetch, calls } = scriptedFetch([jsonResponse(200, answer), jsonResponse(200, { values: "nope" })]);
    const q = { bbox: [0, 0, 1, 1] as [number, number, number, number], zoom: 9, category: "all", window: "30d" };
    const s = await getHeatmapSummary({ ...q, light: "dark", days: "weekends" }, undefined, fetch);
    expect(calls[0].url).toMatch(/&category=all&window=30d&light=dark&days=weekends$/);
    expect(s.grid).toEqual({ bbox: [0, 0, 2, 1], zoom: 9, width: 2, height: 1, values: [[0, 3.5]] });
    const bad = await getHeatmapSummary({ ...q, light: "any", days: "any" }, undefined, fetch);
    expect(calls[1].url).not.toMatch(/light|days/);
    expect(bad.grid).toBeNull();
  });
});

describe("the legend says what is shown", () => {
  it("in words", () => {
    expect(layerDescription("Harassment", "30d", "dark", "weekends")).toBe(
      "Harassment, after dark, weekends, last 30 days",
    );
    expect(layerDescription(null, "30d", "any", "any")).toBe("All reports, last 30 days");
    expect(layerDescription("Theft", "365d", "daylight", "weekdays")).toBe(
      "Theft, in daylight, weekdays, last 12 months",
    );
    expect(layerDescription(null, "all", "any", "weekends")).toBe("All reports, weekends, all time");
  });

  it("in its caption", () => {
    render(
      <Legend
        description="Harassment, after dark, weekends, last 30 days"
        scale={null}
        maxValue={null}
        loaded={false}
        bandwidthM={200}
        minReports={3}
        radiusM={400}
      />,
    );
    expect(screen.getByRole("figure", { name: /Harassment, after dark, weekends, last 30 days/ })).toBeTruthy();
  });
});

describe("the light and days filters", () => {
  it("are labelled native selects, reached with Tab", async () => {
    const onLight = vi.fn();
    const onDays = vi.fn();
    const user = userEvent.setup();
    render(
      <Filters
        categories={[]}
        windows={["30d"]}
        category="all"
        window="30d"
        light="any"
        days="any"
        opacity={0.7}
        onCategory={() => {}}
        onWindow={() => {}}
        onLight={onLight}
        onDays={onDays}
        onOpacity={() => {}}
      />,
    );
    const light = screen.getByLabelText("Time of day") as HTMLSelectElement;
    const days = screen.getByLabelText("Days") as HTMLSelectElement;
    expect([...light.options].map((o) => o.text)).toEqual(["Any time of day", "In daylight", "After dark"]);
    expect([...days.options].map((o) => o.text)).toEqual(["Any day", "Weekdays", "Weekends"]);
    await user.tab(); // Show on map
    await user.tab(); // Time window
    await user.tab();
    expect(document.activeElement).toBe(light);
    await user.tab();
    expect(document.activeElement).toBe(days);
    await user.selectOptions(light, "dark");
    await user.selectOptions(days, "weekends");
    expect(onLight).toHaveBeenCalledWith("dark");
    expect(onDays).toHaveBeenCalledWith("weekends");
  });
});

describe("App with light and days", () => {
  beforeEach(() => {
    window.history.replaceState(null, "", "/?lat=48.85&lon=2.35&z=12&category=theft&window=7d&light=dark&days=weekends");
    vi.spyOn(HTMLElement.prototype, "clientWidth", "get").mockReturnValue(800);
    vi.spyOn(HTMLElement.prototype, "clientHeight", "get").mockReturnValue(600);
  });
  afterEach(() => {
    vi.unstubAllGlobals();
    vi.restoreAllMocks();
  });

  it("opens them from the URL, asks for them and keeps them in the URL", async () => {
    const fetchMock = vi.fn(async (input: RequestInfo | URL) => {
      const url = String(input);
      if (url.endsWith("/config")) return jsonResponse(200, { base_tiles_url: "", windows: ["7d", "30d"] });
      if (url.endsWith("/categories")) return jsonResponse(200, [{ id: "theft", label: "Theft" }]);
      if (url.includes("/heatmap/get")) return jsonResponse(200, { max_value: 0, computed_at: null });
      return new Response("not found", { status: 404 });
    });
    vi.stubGlobal("fetch", fetchMock);
    const user = userEvent.setup();
    render(<App />);
    const light = (await screen.findByLabelText("Time of day")) as HTMLSelectElement;
    expect(light.value).toBe("dark");
    expect((screen.getByLabelText("Days") as HTMLSelectElement).value).toBe("weekends");
    await waitFor(() =>
      expect(screen.getByTestId("legend-layer").textContent).toBe("Theft, after dark, weekends, last 7 days"),
    );
    const gets = () => fetchMock.mock.calls.map((c) => String(c[0])).filter((u) => u.includes("/heatmap/get"));
    await waitFor(() => expect(gets().some((u) => u.endsWith("&light=dark&days=weekends"))).toBe(true));
    await waitFor(() => expect(screen.getByTestId("download-view").getAttribute("href")).toContain("light=dark"));
    const heat = document.querySelector(".heatmap-layer img") as HTMLImageElement | null;
    if (heat) expect(heat.src).toContain("light=dark&days=weekends");

    await user.selectOptions(light, "daylight");
    await user.selectOptions(screen.getByLabelText("Days"), "any");
    await waitFor(() => expect(window.location.search).toContain("light=daylight"));
    expect(window.location.search).not.toContain("days=");
    expect(screen.getByTestId("legend-layer").textContent).toBe("Theft, in daylight, last 7 days");
    await waitFor(() => expect(gets().some((u) => u.endsWith("&window=7d&light=daylight"))).toBe(true));
  });
});
