import { render, screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it, vi } from "vitest";
import type { HeatmapGrid } from "../src/api";
import { DensestTable } from "../src/components/DensestTable";
import { densestCells } from "../src/densest";

// 2 rows x 3 cells over lon 0..3, lat -1..1 (the equator in the middle: Mercator is symmetric there).
const small: HeatmapGrid = {
  bbox: [0, -1, 3, 1],
  zoom: 9,
  width: 3,
  height: 2,
  values: [
    [5, 0, 12.5],
    [1.25, 40, 0],
  ],
};

function wide(n: number): HeatmapGrid {
  // One row of n cells, values 1..n.
  return { bbox: [0, 0, n, 1], zoom: 9, width: n, height: 1, values: [Array.from({ length: n }, (_, i) => i + 1)] };
}

describe("densestCells", () => {
  it("lists the cells with reports, densest first, at their centres", () => {
    const cells = densestCells(small, [-10, -10, 10, 10]);
    expect(cells.map((c) => c.value)).toEqual([40, 12.5, 5, 1.25]);
    expect(cells[0].lon).toBeCloseTo(1.5, 6);
    expect(cells[0].lat).toBeCloseTo(-0.5, 2); // south row
    expect(cells[1].lon).toBeCloseTo(2.5, 6);
    expect(cells[1].lat).toBeCloseTo(0.5, 2); // north row
  });

  it("keeps only the cells whose centres are in the view", () => {
    // The view covers the western two columns, north row only.
    expect(densestCells(small, [0, 0, 2, 1]).map((c) => c.value)).toEqual([5]);
    expect(densestCells(small, [10, 10, 11, 11])).toEqual([]);
  });

  it("gives at most ten", () => {
    expect(densestCells(wide(25), [0, 0, 25, 1]).map((c) => c.value)).toEqual([25, 24, 23, 22, 21, 20, 19, 18, 17, 16]);
    expect(densestCells(null, [0, 0, 1, 1])).toEqual([]);
    expect(densestCells(small, null)).toEqual([]);
  });

  it("reads Mercator rows: the centre row of a tall grid is not the mean latitude", () => {
    const tall: HeatmapGrid = { bbox: [0, 0, 1, 80], zoom: 2, width: 1, height: 1, values: [[1]] };
    const [cell] = densestCells(tall, [0, 0, 1, 80]);
    expect(cell.lat).toBeGreaterThan(55); // Mercator's middle of 0..80° N is about 61° N
    expect(cell.lat).toBeLessThan(65);
  });
});

describe("the table view", () => {
  const props = { view: [-10, -10, 10, 10] as [number, number, number, number], description: "All reports, last 30 days" };

  it("opens from a button and lists the densest places with caption and headers", async () => {
    const onShow = vi.fn();
    const user = userEvent.setup();
    render(<DensestTable grid={small} loaded onShow={onShow} {...props} />);
    const toggle = screen.getByRole("button", { name: "Show as table" });
    expect(toggle.getAttribute("aria-expanded")).toBe("false");
    expect(screen.queryByRole("table")).toBeNull();

    toggle.focus();
    await user.keyboard("{Enter}");
    expect(toggle.getAttribute("aria-expanded")).toBe("true");
    expect(toggle.textContent).toBe("Hide the table");
    const table = screen.getByRole("table", { name: /Densest places in this view.*All reports, last 30 days/ });
    expect(within(table).getAllByRole("columnheader").map((h) => h.textContent)).toEqual([
      "Rank",
      "Place",
      "Reports per km²",
      "Map",
    ]);
    const rows = within(table).getAllByRole("row").slice(1);
    expect(rows).toHaveLength(4);
    expect(within(rows[0]).getByRole("rowheader").textContent).toBe("1");
    expect(rows[0].textContent).toContain("about 40");
    expect(rows[0].textContent).toMatch(/0\.\d{4}° S, 1\.5000° E/);
    expect(rows[3].textContent).toContain("about 1.3");

    await user.click(within(rows[1]).getByRole("button", { name: /^Show on map\W+place 2$/ }));
    expect(onShow).toHaveBeenCalledTimes(1);
    const [lat, lon] = onShow.mock.calls[0];
    expect(lon).toBeCloseTo(2.5, 6);
    expect(lat).toBeCloseTo(0.5, 2);
    expect(screen.getByRole("status").textContent).toMatch(/The map is centred on 0\.\d{4}° N, 2\.5000° E/);

    toggle.focus();
    await user.keyboard(" ");
    expect(screen.queryByRole("table")).toBeNull();
  });

  it("says so when there is nothing to list, while loading and when the answer failed", async () => {
    const user = userEvent.setup();
    const empty: HeatmapGrid = { ...small, values: [[0, 0, 0], [0, 0, 0]] };
    const { rerender } = render(<DensestTable grid={empty} loaded onShow={() => {}} {...props} />);
    await user.click(screen.getByRole("button", { name: "Show as table" }));
    expect(screen.queryByRole("table")).toBeNull();
    expect(screen.getByTestId("densest-empty").textContent).toMatch(/No place in this view has enough reports/);
    rerender(<DensestTable grid={null} loaded={false} onShow={() => {}} {...props} />);
    expect(screen.getByText(/Loading the densest places/)).toBeTruthy();
    rerender(<DensestTable grid={null} loaded={false} failed onShow={() => {}} {...props} />);
    expect(screen.getByText(/could not be loaded/)).toBeTruthy();
  });
});
