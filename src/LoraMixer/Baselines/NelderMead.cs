namespace LoraMixer.Baselines;

/// <summary>
/// The Nelder–Mead simplex method: gradient-free minimisation of a function of a few variables (LoRAHub's
/// search of merge weights). Standard coefficients: reflection 1, expansion 2, contraction ½, shrink ½.
/// </summary>
public static class NelderMead
{
    /// <summary>Minimises <paramref name="f"/> from <paramref name="start"/> with an initial step of <paramref name="step"/>; returns the best point and value.</summary>
    public static (double[] Point, double Value) Minimize(Func<double[], double> f, double[] start, double step, int maxEvaluations)
    {
        int n = start.Length;
        var simplex = new List<(double[] X, double F)> { (start.ToArray(), f(start)) };
        int evaluations = 1;
        for (int i = 0; i < n; i++)
        {
            var x = start.ToArray();
            x[i] += step;
            simplex.Add((x, f(x)));
            evaluations++;
        }
        while (evaluations < maxEvaluations)
        {
            simplex.Sort((a, b) => a.F.CompareTo(b.F));
            var best = simplex[0];
            var worst = simplex[n];
            var centroid = new double[n];
            for (int i = 0; i < n; i++)
                for (int d = 0; d < n; d++) centroid[d] += simplex[i].X[d] / n;
            double[] Along(double t) => centroid.Select((c, d) => c + t * (worst.X[d] - c)).ToArray();

            var reflected = Along(-1);
            double fr = f(reflected);
            evaluations++;
            if (fr < best.F)
            {
                var expanded = Along(-2);
                double fe = f(expanded);
                evaluations++;
                simplex[n] = fe < fr ? (expanded, fe) : (reflected, fr);
            }
            else if (fr < simplex[n - 1].F)
            {
                simplex[n] = (reflected, fr);
            }
            else
            {
                var contracted = fr < worst.F ? Along(-0.5) : Along(0.5);
                double fc = f(contracted);
                evaluations++;
                if (fc < Math.Min(fr, worst.F)) simplex[n] = (contracted, fc);
                else
                {
                    for (int i = 1; i <= n; i++)
                    {
                        var x = simplex[i].X.Select((v, d) => best.X[d] + 0.5 * (v - best.X[d])).ToArray();
                        simplex[i] = (x, f(x));
                        evaluations++;
                    }
                }
            }
        }
        simplex.Sort((a, b) => a.F.CompareTo(b.F));
        return (simplex[0].X, simplex[0].F);
    }
}
