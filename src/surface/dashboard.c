/*
 * dashboard: the page served at /, built into the binary from
 * dashboard.html (the Makefile turns it into a C string). It polls /status
 * and /history every two seconds and draws phase, tables with their rate
 * and time left, the last hour of lag and apply rate, the retained WAL, the
 * last errors and warnings, and any guard or throttle the status carries:
 * no framework, nothing fetched from anywhere but this server.
 */
#include "surface/surface_int.h"

static const char page[] =
#include "surface/dashboard.inc"
    ;

const char *
surface_dashboard(size_t *len)
{
	*len = sizeof(page) - 1;
	return page;
}
