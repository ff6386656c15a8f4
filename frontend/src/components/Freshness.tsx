// "Heatmap updated N s ago", from the heatmap's computed_at.

import { useEffect, useState } from "react";
import { updatedAgo } from "../format";

export function Freshness({ computedAt, error }: { computedAt: string | null; error: string | null }) {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(t);
  }, []);
  return (
    <p className="freshness">
      {error ?? updatedAgo(computedAt, now)}
    </p>
  );
}
