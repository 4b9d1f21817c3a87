/* A compiled simulation: the 1-D heat equation u_t = alpha u_xx on [0, 1], u = 0 at both
 * ends, u(x, 0) = sin(pi x), solved with explicit finite differences.
 *
 *   heat ALPHA NX DT T_END
 *
 * Prints `MEXPLORE_RESULT {"max_error": ..., "steps": ...}`, max_error being the largest
 * difference from the exact solution exp(-pi^2 alpha t) sin(pi x). The scheme is stable
 * only if alpha dt / dx^2 <= 1/2: past that the solution blows up, the error is inf or
 * nan, and mexplore records the task as failed, which is what a sweep should show.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: heat ALPHA NX DT T_END\n");
        return 2;
    }
    double alpha = atof(argv[1]), dt = atof(argv[3]), t_end = atof(argv[4]);
    int nx = atoi(argv[2]);
    if (nx < 3 || dt <= 0 || alpha <= 0) {
        fprintf(stderr, "bad arguments: nx >= 3, dt > 0, alpha > 0\n");
        return 2;
    }
    double dx = 1.0 / (nx - 1), r = alpha * dt / (dx * dx);
    double *u = calloc(nx, sizeof *u), *next = calloc(nx, sizeof *next);
    for (int i = 0; i < nx; i++) u[i] = sin(M_PI * i * dx);
    long steps = lround(t_end / dt);
    for (long s = 0; s < steps; s++) {
        for (int i = 1; i < nx - 1; i++) next[i] = u[i] + r * (u[i - 1] - 2 * u[i] + u[i + 1]);
        double *swap = u; u = next; next = swap;
        if (s % 100 == 0) printf("MEXPLORE_REPORT %ld %.6g\n", s, u[nx / 2]);
    }
    double t = steps * dt, error = 0;
    int blown_up = 0;
    for (int i = 0; i < nx; i++) {
        double exact = exp(-M_PI * M_PI * alpha * t) * sin(M_PI * i * dx);
        error = fmax(error, fabs(u[i] - exact));
        blown_up |= !isfinite(u[i]);
    }
    if (blown_up) error = NAN;
    printf("MEXPLORE_RESULT {\"max_error\": %.17g, \"steps\": %ld, \"r\": %.6g}\n", error, steps, r);
    free(u);
    free(next);
    return 0;
}
