# Reference values for Special.studentTLogCdf and Special.gammaLogPQ (SpecialCdfTests.fs), in 80-digit
# arithmetic with mpmath; prints F# rows (t or x, nu or a, log F or log P, log Q). Not run by CI.
from mpmath import mp, mpf, gammainc, hyp2f1, loggamma, exp, log, log1p, inf
mp.dps = 80

def t_logcdf(t, nu):
    t, nu = mpf(t), mpf(nu)
    if nu > 1e3 and t * t < nu: return None  # the series needs ~nu terms there
    if t == 0: return log(mpf(1) / 2)
    x, y = nu / (nu + t * t), t * t / (nu + t * t)
    # F(-|t|) = I_x(nu/2, 1/2)/2 = (1 - I_y(1/2, nu/2))/2, the smaller argument in the series
    # I_z(a, b) = z^a (1-z)^b / (a B(a, b)) 2F1(a+b, 1; a+1; z)
    def ibeta(a, b, z):
        lb = loggamma(a) + loggamma(b) - loggamma(a + b)
        term, total, n = mpf(1), mpf(1), 0
        while term > total * mpf(10) ** -(mp.dps + 5):
            term = term * (a + b + n) / (a + 1 + n) * z
            total += term
            n += 1
        return exp(a * log(z) + b * log1p(-z) - lb) / a * total
    half = mpf(1) / 2
    if x < y: lower = ibeta(nu / 2, half, x) / 2
    else:
        with mp.workdps(1000):  # 1 - I cancels down to F(-|t|), as small as 1e-150 here
            lower = (1 - ibeta(half, nu / 2, y)) / 2
    return log(lower) if t < 0 else log1p(-lower)

def g_logpq(x, a):
    x, a = mpf(x), mpf(a)
    if x < a:
        # P = x^a e^-x / Gamma(a+1) * sum_n x^n / ((a+1)...(a+n)), positive terms
        term, total, n = mpf(1), mpf(1), 1
        while term > total * mpf(10) ** -70:
            term = term * x / (a + n)
            total += term
            n += 1
        p = exp(a * log(x) - x - loggamma(a + 1)) * total
        q = 1 - p
    else:
        q = gammainc(a, x, inf, regularized=True)
        p = 1 - q
    lp = log(p) if p < 0.5 else log1p(-q)
    lq = log(q) if q < 0.5 else log1p(-p)
    return lp, lq

print("let studentTRows : (float * float * float)[] = [|")
for nu in [1e-3, 0.1, 0.5, 1.0, 2.0, 3.0, 7.5, 30.0, 1e3, 1e5]:
    for t in [-1e300, -1e100, -1e6, -1e3, -30.0, -5.0, -1.5, -0.3, -1e-8, 1e-8, 0.7, 2.0, 9.0, 100.0, 1e6, 1e100]:
        v = t_logcdf(t, nu)
        if v is not None: print("    %r, %r, %r" % (t, nu, float(v)))
# huge df, near the body (where the series above would need ~nu terms): quadrature of the density,
# scaled by its value at t, with breakpoints every 0.5% of t out to 3t
from mpmath import quad, pi
def t_logcdf_quad(t, nu):
    t, nu = mpf(t), mpf(nu)
    s = -abs(t)
    lf = lambda v: loggamma((nu + 1) / 2) - loggamma(nu / 2) - log(nu * pi) / 2 - (nu + 1) / 2 * log1p(v * v / nu)
    l0 = lf(s)
    pts = [s * (1 + mpf(k) / 200) for k in range(0, 400)][::-1]
    lower = exp(l0) * quad(lambda v: exp(lf(v) - l0), [-inf] + pts)
    return log(lower) if t < 0 else log1p(-lower)
for nu in [1e7, 1e9, 1e12]:
    for t in [-40.0, -5.0, -2.0, -0.5, 0.7, 3.0]:
        print("    %r, %r, %r" % (t, nu, float(t_logcdf_quad(t, nu))))
print("|]")
print("let gammaRows : (float * float * float * float)[] = [|")
for a in [1e-10, 1e-3, 0.1, 0.5, 1.0, 2.5, 9.9, 10.0, 35.0, 1e3, 1e5, 1e8]:
    for r in [1e-200, 1e-30, 1e-5, 0.01, 0.3, 0.9, 0.999, 0.9999, 1.0, 1.0001, 1.001, 1.2, 3.0, 30.0, 1e3]:
        x = r * max(a, 1.0)
        lp, lq = g_logpq(x, a)
        print("    %r, %r, %r, %r" % (x, a, float(lp), float(lq)))
print("|]")
# derivatives in the shape parameter (mpmath's numerical differentiation at 80 digits)
from mpmath import diff
print("let studentTDfRows : (float * float * float)[] = [|")
for t, nu in [(-1e6, 0.5), (-30.0, 3.0), (-1.5, 3.0), (-0.3, 1.0), (0.7, 7.5), (9.0, 30.0), (-40.0, 1e3), (2.0, 0.1)]:
    print("    %r, %r, %r" % (t, nu, float(diff(lambda n: t_logcdf(t, n), mpf(nu)))))
print("|]")
print("let gammaShapeRows : (float * float * float * float)[] = [|")
for x, a in [(1e-30, 0.5), (0.3, 0.1), (2.0, 2.5), (30.0, 2.5), (9.0, 10.0), (40.0, 35.0), (1100.0, 1e3), (0.5, 3.0)]:
    dp = diff(lambda s: g_logpq(x, s)[0], mpf(a))
    dq = diff(lambda s: g_logpq(x, s)[1], mpf(a))
    print("    %r, %r, %r, %r" % (x, a, float(dp), float(dq)))
print("|]")
