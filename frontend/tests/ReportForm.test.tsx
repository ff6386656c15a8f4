import { render, screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { useState } from "react";
import { describe, expect, it, vi } from "vitest";
import type { LatLon } from "../src/components/MapView";
import { ReportForm } from "../src/components/ReportForm";
import { jsonResponse, scriptedFetch } from "./helpers";

const categories = [
  { id: "harassment", label: "Harassment" },
  { id: "poor_lighting", label: "Poor lighting" },
  { id: "theft", label: "Theft" },
];

function keyMaker() {
  let n = 0;
  const fn = vi.fn(() => `key-${++n}`);
  return fn;
}

function Harness(props: { fetchImpl: typeof fetch; makeKey?: () => string; start?: LatLon | null; max?: number }) {
  const [where, setWhere] = useState<LatLon | null>(props.start === undefined ? { lat: 51.5, lon: -0.12 } : props.start);
  return (
    <ReportForm
      categories={categories}
      categoriesError={null}
      descriptionMax={props.max ?? 500}
      location={where}
      onLocationChange={(w) => setWhere(w)}
      getMapCentre={() => ({ lat: 48.8566, lon: 2.3522 })}
      geolocate={async () => {
        throw new Error("Location permission was denied. Tap or click the map instead.");
      }}
      fetchImpl={props.fetchImpl}
      makeKey={props.makeKey ?? keyMaker()}
    />
  );
}

/** The error shown next to a control: the element named by its aria-describedby. */
function describedText(el: HTMLElement): string {
  const ids = (el.getAttribute("aria-describedby") ?? "").split(/\s+/).filter(Boolean);
  return ids.map((id) => document.getElementById(id)?.textContent ?? "").join(" | ");
}

async function fill(user: ReturnType<typeof userEvent.setup>, category = "theft", description = "") {
  await user.selectOptions(screen.getByLabelText("Category"), category);
  const d = screen.getByLabelText("Description");
  await user.clear(d);
  if (description) await user.type(d, description);
}

describe("ReportForm", () => {
  it("has the accessible names the tests and users rely on", () => {
    render(<Harness fetchImpl={scriptedFetch([]).fetch} />);
    expect(screen.getByRole("combobox", { name: "Category" })).toBeTruthy();
    expect(screen.getByRole("textbox", { name: "Description" })).toBeTruthy();
    expect(screen.getByRole("button", { name: "Submit report" })).toBeTruthy();
    expect(screen.getByRole("button", { name: "Use my location" })).toBeTruthy();
  });

  it("shows validation messages next to their fields and sends nothing", async () => {
    const user = userEvent.setup();
    const f = scriptedFetch([]);
    render(<Harness fetchImpl={f.fetch} start={null} max={10} />);
    await user.type(screen.getByLabelText("Description"), "far too long text");
    await user.click(screen.getByRole("button", { name: "Submit report" }));

    const category = screen.getByLabelText("Category");
    expect(category.getAttribute("aria-invalid")).toBe("true");
    expect(describedText(category)).toContain("Choose a category.");
    const description = screen.getByLabelText("Description");
    expect(describedText(description)).toContain("Description is too long: 7 characters over the limit of 10.");
    const locate = screen.getByRole("button", { name: "Use my location" });
    expect(describedText(locate)).toMatch(/Choose a place/);
    // The first field in error gets the focus.
    expect(document.activeElement).toBe(locate);
    expect(f.fetch).not.toHaveBeenCalled();
  });

  it("clears a field's message once it is corrected", async () => {
    const user = userEvent.setup();
    render(<Harness fetchImpl={scriptedFetch([]).fetch} />);
    await user.click(screen.getByRole("button", { name: "Submit report" }));
    expect(screen.getByText("Choose a category.")).toBeTruthy();
    await user.selectOptions(screen.getByLabelText("Category"), "theft");
    expect(screen.queryByText("Choose a category.")).toBeNull();
  });

  it("counts description characters live", async () => {
    const user = userEvent.setup();
    render(<Harness fetchImpl={scriptedFetch([]).fetch} />);
    expect(screen.getByText("0 / 500 characters")).toBeTruthy();
    await user.type(screen.getByLabelText("Description"), "  Broken lamp");
    expect(screen.getByText("11 / 500 characters")).toBeTruthy();
    expect(describedText(screen.getByLabelText("Description"))).toContain("11 / 500 characters");
  });

  it("places the marker at the map centre and shows a geolocation error at the place field", async () => {
    const user = userEvent.setup();
    render(<Harness fetchImpl={scriptedFetch([]).fetch} start={null} />);
    await user.click(screen.getByRole("button", { name: "Use my location" }));
    expect(await screen.findByText(/Location permission was denied/)).toBeTruthy();
    await user.click(screen.getByRole("button", { name: "Use map centre" }));
    expect(screen.getByText(/Marker at 48\.85660, 2\.35220/)).toBeTruthy();
    expect(screen.queryByText(/Location permission was denied/)).toBeNull();
  });

  it("acknowledges with the report id, then starts a new form with a new key", async () => {
    const user = userEvent.setup();
    const f = scriptedFetch([
      jsonResponse(202, { id: "rep-111", status: "queued" }),
      jsonResponse(202, { id: "rep-222", status: "queued" }),
    ]);
    render(<Harness fetchImpl={f.fetch} />);
    await fill(user, "theft", "  dark alley  ");
    await user.click(screen.getByRole("button", { name: "Submit report" }));

    const status = await screen.findByRole("status");
    await waitFor(() => expect(status.textContent).toContain("Report received"));
    expect(status.textContent).toContain("rep-111");
    expect(f.calls[0].body).toEqual({ lat: 51.5, lon: -0.12, category: "theft", description: "dark alley" });
    // The form is reset: no place, no category, empty description.
    expect((screen.getByLabelText("Category") as HTMLSelectElement).value).toBe("");
    expect((screen.getByLabelText("Description") as HTMLTextAreaElement).value).toBe("");
    expect(screen.getByText("Tap or click the map to place a marker.")).toBeTruthy();

    await user.click(screen.getByRole("button", { name: "Use map centre" }));
    await fill(user, "harassment");
    await user.click(screen.getByRole("button", { name: "Submit report" }));
    await waitFor(() => expect(screen.getByRole("status").textContent).toContain("rep-222"));

    expect(f.calls).toHaveLength(2);
    expect(f.calls[0].headers["idempotency-key"]).toBe("key-1");
    expect(f.calls[1].headers["idempotency-key"]).toBe("key-2");
  });

  it("reuses the key when retrying after a network failure or a busy server", async () => {
    const user = userEvent.setup();
    const f = scriptedFetch([
      new TypeError("Failed to fetch"),
      jsonResponse(503, { error: "queue_unavailable", message: "busy", field: null }, { "Retry-After": "2" }),
      jsonResponse(202, { id: "rep-9", status: "queued" }),
    ]);
    render(<Harness fetchImpl={f.fetch} />);
    await fill(user, "poor_lighting");
    const submit = screen.getByRole("button", { name: "Submit report" });

    await user.click(submit);
    await waitFor(() => expect(describedText(submit)).toMatch(/could not be reached/));
    await user.click(submit);
    await waitFor(() => expect(describedText(submit)).toMatch(/try again in 2 seconds/));
    await user.click(submit);
    await waitFor(() => expect(screen.getByRole("status").textContent).toContain("rep-9"));

    expect(f.calls.map((c) => c.headers["idempotency-key"])).toEqual(["key-1", "key-1", "key-1"]);
    expect(f.calls[0].body).toEqual(f.calls[2].body);
  });

  it("shows the rate limit next to the submit button and keeps the key", async () => {
    const user = userEvent.setup();
    const f = scriptedFetch([
      jsonResponse(429, { error: "rate_limited", message: "Too many", field: null }, { "Retry-After": "42" }),
      jsonResponse(202, { id: "rep-5", status: "queued" }),
    ]);
    render(<Harness fetchImpl={f.fetch} />);
    await fill(user);
    const submit = screen.getByRole("button", { name: "Submit report" });
    await user.click(submit);
    await waitFor(() => expect(describedText(submit)).toMatch(/Too many reports.*wait 42 seconds/));
    expect(screen.getByRole("alert").textContent).toMatch(/42 seconds/);
    await user.click(submit);
    await waitFor(() => expect(screen.getByRole("status").textContent).toContain("rep-5"));
    expect(f.calls[1].headers["idempotency-key"]).toBe(f.calls[0].headers["idempotency-key"]);
  });

  it("shows the server's field error next to that field; the corrected report gets a new key", async () => {
    const user = userEvent.setup();
    const f = scriptedFetch([
      jsonResponse(422, {
        error: "invalid_field",
        message: "Description contains a phone number",
        field: "description",
        errors: [{ field: "description", message: "Description contains a phone number" }],
      }),
      jsonResponse(202, { id: "rep-7", status: "queued" }),
    ]);
    render(<Harness fetchImpl={f.fetch} />);
    await fill(user, "theft", "call 0123");
    await user.click(screen.getByRole("button", { name: "Submit report" }));
    const description = screen.getByLabelText("Description");
    await waitFor(() => expect(describedText(description)).toContain("Description contains a phone number"));
    expect(document.activeElement).toBe(description);

    await fill(user, "theft", "no number");
    await user.click(screen.getByRole("button", { name: "Submit report" }));
    await waitFor(() => expect(screen.getByRole("status").textContent).toContain("rep-7"));
    expect(f.calls[0].headers["idempotency-key"]).toBe("key-1");
    expect(f.calls[1].headers["idempotency-key"]).toBe("key-2");
  });

  it("maps lat/lon errors from the server to the place field", async () => {
    const user = userEvent.setup();
    const f = scriptedFetch([
      jsonResponse(422, {
        error: "validation_failed",
        message: "lat: must be between -90 and 90",
        field: "lat",
        errors: [{ field: "lat", message: "lat: must be between -90 and 90" }],
      }),
    ]);
    render(<Harness fetchImpl={f.fetch} />);
    await fill(user);
    await user.click(screen.getByRole("button", { name: "Submit report" }));
    await waitFor(() =>
      expect(describedText(screen.getByRole("button", { name: "Use my location" }))).toContain(
        "Latitude must be between -90 and 90.",
      ),
    );
  });

  it("cannot submit twice while a request is on its way", async () => {
    const user = userEvent.setup();
    let release: (r: Response) => void = () => {};
    const pending = new Promise<Response>((resolve) => {
      release = resolve;
    });
    const f = scriptedFetch([() => pending]);
    render(<Harness fetchImpl={f.fetch} />);
    await fill(user);
    const submit = screen.getByRole("button", { name: "Submit report" });
    const form = submit.closest("form") as HTMLFormElement;
    await user.click(submit);
    // A second submit (Enter, or a click before the button is disabled) does nothing.
    form.requestSubmit();
    form.requestSubmit();
    expect((submit as HTMLButtonElement).disabled).toBe(true);
    release(jsonResponse(202, { id: "rep-once", status: "queued" }));
    await waitFor(() => expect(screen.getByRole("status").textContent).toContain("rep-once"));
    expect(f.fetch).toHaveBeenCalledTimes(1);
  });

  it("gives a new key after Clear", async () => {
    const user = userEvent.setup();
    const f = scriptedFetch([
      new TypeError("Failed to fetch"),
      jsonResponse(202, { id: "rep-c", status: "queued" }),
    ]);
    render(<Harness fetchImpl={f.fetch} />);
    await fill(user);
    await user.click(screen.getByRole("button", { name: "Submit report" }));
    await waitFor(() => expect(screen.getByRole("alert").textContent).toMatch(/could not be reached/));
    await user.click(screen.getByRole("button", { name: "Clear" }));
    expect(screen.queryByRole("alert")).toBeNull();
    await user.click(screen.getByRole("button", { name: "Use map centre" }));
    await fill(user, "harassment");
    await user.click(screen.getByRole("button", { name: "Submit report" }));
    await waitFor(() => expect(screen.getByRole("status").textContent).toContain("rep-c"));
    expect(f.calls.map((c) => c.headers["idempotency-key"])).toEqual(["key-1", "key-2"]);
  });
});
