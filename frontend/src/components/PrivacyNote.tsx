// What is stored, what is shown, and why single reports are not visible.

export function PrivacyNote({
  bandwidthM,
  minReports,
  radiusM,
}: {
  bandwidthM: number;
  minReports: number;
  radiusM: number;
}) {
  return (
    <section className="privacy" aria-labelledby="privacy-title">
      <h2 id="privacy-title">Privacy</h2>
      <p>
        <strong>What is stored:</strong> the place you mark, the category, the time, and your description if you
        write one. We ask for no name, e-mail address or account. With each report we keep a pseudonym of your
        connection for that day (a keyed code, not your address, never shown), so that one person's reports
        count once.
      </p>
      <p>
        <strong>What is shown:</strong> only the heatmap, a smoothed count of reports per km². Each report is spread
        over about {Math.round(bandwidthM)} m, and a place stays blank unless at least {minReports} different
        people reported within {Math.round(radiusM)} m of it. Comparing time windows or categories cannot single
        out a report either: where it could, the map stays blank.
        Descriptions are not shown on the map.
      </p>
      <p>
        <strong>Why you cannot see single reports:</strong> an exact point could reveal who reported it, who it
        happened to, or where someone lives. Showing only places where several reports overlap keeps each person
        hidden in the crowd.
      </p>
    </section>
  );
}
