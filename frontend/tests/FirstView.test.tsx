import { render, screen, waitFor } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { App } from "../src/App";
import { jsonResponse } from "./helpers";

function api(opening: unknown) {
  return vi.fn(async (input: RequestInfo | URL) => {
    const url = String(input);
    if (url.endsWith("/summary")) return jsonResponse(200, opening);
    if (url.endsWith("/config")) return jsonResponse(200, { base_tiles_url: "" });
    if (url.endsWith("/categories")) return jsonResponse(200, []);
    return new Response("not found", { status: 404 });
  });
}

describe("the page without a view in its URL", () => {
  beforeEach(() => {
    window.history.replaceState(null, "", "/");
    vi.spyOn(HTMLElement.prototype, "clientWidth", "get").mockReturnValue(800);
    vi.spyOn(HTMLElement.prototype, "clientHeight", "get").mockReturnValue(600);
  });
  afterEach(() => {
    vi.unstubAllGlobals();
    vi.restoreAllMocks();
  });

  it("opens where the reports are", async () => {
    vi.stubGlobal("fetch", api({ open: { lat: 48.85, lon: 2.35, zoom: 12 }, empty: false }));
    render(<App />);
    await waitFor(() => expect(window.location.search).toContain("lat=48.85"));
    expect(window.location.search).toContain("lon=2.35");
    expect(window.location.search).toContain("z=12");
    expect(screen.queryByText(/No reports yet/)).toBeNull();
  });

  it("opens on the world and says how to add the first report", async () => {
    vi.stubGlobal("fetch", api({ open: null, empty: true }));
    render(<App />);
    const message = await screen.findByText(/No reports yet/);
    expect(message.getAttribute("role")).toBe("status");
    expect(screen.getByRole("link", { name: "the report form" }).getAttribute("href")).toBe("#report");
    await waitFor(() => expect(window.location.search).toContain("z=2"));
  });
});
