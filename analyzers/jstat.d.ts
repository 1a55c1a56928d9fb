/** The one function of jstat (npm `jstat`, no bundled types) the benchmark's Welch test uses. */
declare module 'jstat' {
  const jStat: {
    studentt: {
      /** Student's t distribution: P(T <= x) with `dof` degrees of freedom (dof may be fractional). */
      cdf(x: number, dof: number): number;
    };
  };
  export default jStat;
}
