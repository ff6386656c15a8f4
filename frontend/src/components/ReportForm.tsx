// The report form: place, category, optional description and time; one Idempotency-Key per form.

import { type FormEvent, useEffect, useId, useRef, useState } from "react";
import type { Category } from "../api";
import {
  buildPayload,
  descriptionLength,
  type FieldErrors,
  type FieldName,
  newIdempotencyKey,
  type ReportDraft,
  submitReport,
  validateDraft,
} from "../report";
import type { LatLon } from "./MapView";

export interface ReportFormProps {
  categories: Category[] | null;
  categoriesError: string | null;
  onRetryCategories?: () => void;
  descriptionMax: number;
  location: LatLon | null;
  onLocationChange: (where: LatLon | null, source: "gps" | "centre" | "reset") => void;
  /** Centre of the map, for keyboard users who move the map instead of clicking it. */
  getMapCentre?: () => LatLon | null;
  geolocate?: () => Promise<LatLon>;
  onSubmitted?: (id: string) => void;
  fetchImpl?: typeof fetch;
  makeKey?: () => string;
}

const FIELD_ORDER: FieldName[] = ["location", "category", "description", "occurred_at", "form"];

function browserGeolocate(): Promise<LatLon> {
  return new Promise((resolve, reject) => {
    if (typeof navigator === "undefined" || !navigator.geolocation) {
      reject(new Error("Your browser cannot share your location. Tap or click the map instead."));
      return;
    }
    navigator.geolocation.getCurrentPosition(
      (pos) => resolve({ lat: pos.coords.latitude, lon: pos.coords.longitude }),
      (err) => {
        const messages: Record<number, string> = {
          1: "Location permission was denied. Tap or click the map instead.",
          2: "Your location is not available right now. Tap or click the map instead.",
          3: "Finding your location took too long. Try again, or tap or click the map.",
        };
        reject(new Error(messages[err.code] ?? "Your location could not be found. Tap or click the map instead."));
      },
      { enableHighAccuracy: true, timeout: 15_000, maximumAge: 60_000 },
    );
  });
}

function localNowForInput(): string {
  const d = new Date();
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

export function ReportForm(props: ReportFormProps) {
  const {
    categories,
    categoriesError,
    onRetryCategories,
    descriptionMax,
    location,
    onLocationChange,
    getMapCentre,
    geolocate = browserGeolocate,
    onSubmitted,
    fetchImpl,
    makeKey = newIdempotencyKey,
  } = props;
  const uid = useId();
  const ids = {
    location: `${uid}-location`,
    locationError: `${uid}-location-error`,
    category: `${uid}-category`,
    categoryError: `${uid}-category-error`,
    description: `${uid}-description`,
    descriptionHint: `${uid}-description-hint`,
    descriptionCount: `${uid}-description-count`,
    descriptionError: `${uid}-description-error`,
    occurred: `${uid}-occurred`,
    occurredHint: `${uid}-occurred-hint`,
    occurredError: `${uid}-occurred-error`,
    formError: `${uid}-form-error`,
  };

  const [category, setCategory] = useState("");
  const [description, setDescription] = useState("");
  const [occurredAt, setOccurredAt] = useState("");
  const [errors, setErrors] = useState<FieldErrors>({});
  const [submitting, setSubmitting] = useState(false);
  const [locating, setLocating] = useState(false);
  const [ack, setAck] = useState<string | null>(null);
  const [countAnnouncement, setCountAnnouncement] = useState("");

  // One key per form: kept across retries of the same report, replaced after success or reset.
  const keyRef = useRef<string | null>(null);
  if (keyRef.current === null) keyRef.current = makeKey();
  // Guards against a second submit while the first is on its way (double click, Enter twice).
  const inFlight = useRef(false);

  const refs = {
    location: useRef<HTMLButtonElement | null>(null),
    category: useRef<HTMLSelectElement | null>(null),
    description: useRef<HTMLTextAreaElement | null>(null),
    occurred_at: useRef<HTMLInputElement | null>(null),
    form: useRef<HTMLButtonElement | null>(null),
  };

  const length = descriptionLength(description);
  const remaining = descriptionMax - length;

  // Screen readers hear the count once typing pauses, not on every key.
  useEffect(() => {
    const t = setTimeout(() => {
      setCountAnnouncement(
        remaining >= 0
          ? `${remaining} character${remaining === 1 ? "" : "s"} remaining`
          : `${-remaining} character${remaining === -1 ? "" : "s"} too many`,
      );
    }, 800);
    return () => clearTimeout(t);
  }, [remaining]);

  // A new place clears the "choose a place" message.
  useEffect(() => {
    if (location) setErrors((e) => (e.location ? { ...e, location: undefined } : e));
  }, [location]);

  function clearError(field: FieldName) {
    setErrors((e) => (e[field] ? { ...e, [field]: undefined } : e));
  }

  function focusFirst(errs: FieldErrors) {
    const first = FIELD_ORDER.find((f) => errs[f]);
    if (first) refs[first].current?.focus();
  }

  async function locateMe() {
    setLocating(true);
    clearError("location");
    try {
      const where = await geolocate();
      onLocationChange(where, "gps");
    } catch (err) {
      setErrors((e) => ({ ...e, location: err instanceof Error ? err.message : String(err) }));
    } finally {
      setLocating(false);
    }
  }

  function pickMapCentre() {
    const c = getMapCentre?.();
    if (c) onLocationChange(c, "centre");
  }

  function resetForm() {
    setCategory("");
    setDescription("");
    setOccurredAt("");
    setErrors({});
    keyRef.current = makeKey();
    onLocationChange(null, "reset");
  }

  async function onSubmit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    if (inFlight.current) return;
    const draft: ReportDraft = {
      lat: location?.lat ?? null,
      lon: location?.lon ?? null,
      category,
      description,
      occurredAt,
    };
    const found = validateDraft(draft, { categories, descriptionMax });
    if (Object.values(found).some(Boolean)) {
      setErrors(found);
      setAck(null);
      focusFirst(found);
      return;
    }
    inFlight.current = true;
    setSubmitting(true);
    setErrors({});
    setAck(null);
    try {
      const outcome = await submitReport(buildPayload(draft), keyRef.current as string, fetchImpl);
      if (outcome.kind === "accepted") {
        setAck(outcome.id);
        resetForm();
        onSubmitted?.(outcome.id);
      } else {
        if (outcome.kind === "rejected") keyRef.current = makeKey();
        setErrors(outcome.errors);
        focusFirst(outcome.errors);
      }
    } finally {
      inFlight.current = false;
      setSubmitting(false);
    }
  }

  const describedBy = (...parts: (string | false | undefined)[]) => parts.filter(Boolean).join(" ") || undefined;

  return (
    <form className="report-form" onSubmit={onSubmit} onReset={(e) => { e.preventDefault(); resetForm(); setAck(null); }} noValidate aria-labelledby={`${uid}-title`}>
      <h2 id={`${uid}-title`}>Report an unsafe place</h2>

      <div className={`field${errors.location ? " field-invalid" : ""}`} role="group" aria-labelledby={ids.location}>
        <p className="label" id={ids.location}>
          Place
        </p>
        <p className="location-value" aria-live="polite">
          {location
            ? `Marker at ${location.lat.toFixed(5)}, ${location.lon.toFixed(5)}. Drag it or click the map to move it.`
            : "Tap or click the map to place a marker."}
        </p>
        <div className="button-row">
          <button
            type="button"
            ref={refs.location}
            onClick={locateMe}
            disabled={locating}
            aria-describedby={describedBy(errors.location && ids.locationError)}
          >
            {locating ? "Finding you…" : "Use my location"}
          </button>
          {getMapCentre && (
            <button type="button" onClick={pickMapCentre}>
              Use map centre
            </button>
          )}
        </div>
        {errors.location && (
          <p className="field-error" id={ids.locationError}>
            {errors.location}
          </p>
        )}
      </div>

      <div className={`field${errors.category ? " field-invalid" : ""}`}>
        <label htmlFor={ids.category}>Category</label>
        <select
          id={ids.category}
          ref={refs.category}
          name="category"
          value={category}
          required
          disabled={!categories}
          aria-invalid={errors.category ? true : undefined}
          aria-describedby={describedBy(errors.category && ids.categoryError)}
          onChange={(e) => {
            setCategory(e.target.value);
            clearError("category");
          }}
        >
          <option value="">{categories ? "Choose a category" : categoriesError ? "Not available" : "Loading…"}</option>
          {(categories ?? []).map((c) => (
            <option key={c.id} value={c.id}>
              {c.label}
            </option>
          ))}
        </select>
        {errors.category && (
          <p className="field-error" id={ids.categoryError}>
            {errors.category}
          </p>
        )}
        {!categories && categoriesError && (
          <p className="field-error">
            {categoriesError}{" "}
            {onRetryCategories && (
              <button type="button" className="link-button" onClick={onRetryCategories}>
                Try again
              </button>
            )}
          </p>
        )}
      </div>

      <div className={`field${errors.description || remaining < 0 ? " field-invalid" : ""}`}>
        <label htmlFor={ids.description}>Description</label>
        <p className="hint" id={ids.descriptionHint}>
          Optional. What makes this place unsafe? Please leave out names, phone numbers and other personal details.
        </p>
        <textarea
          id={ids.description}
          ref={refs.description}
          name="description"
          rows={4}
          value={description}
          aria-invalid={errors.description || remaining < 0 ? true : undefined}
          aria-describedby={describedBy(ids.descriptionHint, ids.descriptionCount, errors.description && ids.descriptionError)}
          onChange={(e) => {
            setDescription(e.target.value);
            clearError("description");
          }}
        />
        <p className={`char-count${remaining < 0 ? " over" : ""}`} id={ids.descriptionCount}>
          {length} / {descriptionMax} characters
        </p>
        <p className="visually-hidden" aria-live="polite">
          {countAnnouncement}
        </p>
        {errors.description && (
          <p className="field-error" id={ids.descriptionError}>
            {errors.description}
          </p>
        )}
      </div>

      <div className={`field${errors.occurred_at ? " field-invalid" : ""}`}>
        <label htmlFor={ids.occurred}>When did it happen?</label>
        <p className="hint" id={ids.occurredHint}>
          Optional. Leave empty if it is happening now.
        </p>
        <input
          id={ids.occurred}
          ref={refs.occurred_at}
          type="datetime-local"
          name="occurred_at"
          value={occurredAt}
          min="2000-01-01T00:00"
          max={localNowForInput()}
          aria-invalid={errors.occurred_at ? true : undefined}
          aria-describedby={describedBy(ids.occurredHint, errors.occurred_at && ids.occurredError)}
          onChange={(e) => {
            setOccurredAt(e.target.value);
            clearError("occurred_at");
          }}
        />
        {errors.occurred_at && (
          <p className="field-error" id={ids.occurredError}>
            {errors.occurred_at}
          </p>
        )}
      </div>

      <div className={`field${errors.form ? " field-invalid" : ""}`}>
        <div className="button-row">
          <button
            type="submit"
            className="primary"
            ref={refs.form}
            disabled={submitting}
            aria-busy={submitting || undefined}
            aria-describedby={describedBy(errors.form && ids.formError)}
          >
            Submit report
          </button>
          <button type="reset" className="secondary" disabled={submitting}>
            Clear
          </button>
        </div>
        {submitting && <p className="hint">Sending…</p>}
        {errors.form && (
          <p className="field-error" id={ids.formError} role="alert">
            {errors.form}
          </p>
        )}
      </div>

      <div className="ack-region" role="status">
        {ack !== null && (
          <div className="ack">
            <p>
              <strong>Report received.</strong> Reference: <code className="report-id">{ack || "(none)"}</code>
            </p>
            <p>Thank you. It will count towards the heatmap at its next update.</p>
            <p>Keep the reference: it is what the operators need to remove this report if you ask them to.</p>
          </div>
        )}
      </div>
    </form>
  );
}
