import { describe, expect, it } from "vitest";
import { formatView, parseView } from "../src/urlState";

describe("URL view state", () => {
  it("round-trips centre, zoom and filters", () => {
    const view = { lat: 51.50512, lon: -0.0912, zoom: 14, category: "theft", window: "7d", light: "any", days: "any" } as const;
    const parsed = parseView(formatView(view));
    expect(parsed.zoom).toBe(14);
    expect(parsed.category).toBe("theft");
    expect(parsed.window).toBe("7d");
    expect(parsed.lat).toBeCloseTo(51.50512, 4);
    expect(parsed.lon).toBeCloseTo(-0.0912, 4);
  });

  it("keeps unrelated parameters", () => {
    expect(formatView({ lat: 1, lon: 2, zoom: 3, category: "all", window: "all", light: "any", days: "any" }, "?lang=fr")).toMatch(
      /^\?lang=fr&lat=/,
    );
  });

  it("ignores nonsense", () => {
    expect(parseView("?lat=abc&lon=2&z=99&category=%3Cscript%3E&window=")).toEqual({});
    expect(parseView("?lat=95&lon=0")).toEqual({});
    expect(parseView("")).toEqual({});
  });
});
