/*
 * exposition: the metrics as served on metrics_listen, in Prometheus' text
 * format: every worker's counters summed, with the gauges of the moment.
 */
#ifndef EXPOSITION_H
#define EXPOSITION_H

struct evbuffer;

/* The exposition text, as served: appended to the buffer. */
void exposition_render(struct evbuffer *);

#endif
