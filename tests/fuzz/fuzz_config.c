/*
 * fuzz_config: arbitrary text as a configuration file.  Either it parses
 * or the error names the file; never a crash, a leak or an overrun.
 */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config	*cfg = config_new();
	char		 err[512] = "";

	if (cfg == NULL)
		return 0;
	if (config_parse_text(cfg, (const char *)data, size, "/f/fuzz.conf",
	    err, sizeof(err)) != 0)
		assert(strncmp(err, "/f/fuzz.conf:", 13) == 0);
	else
		(void)config_validate(cfg, err, sizeof(err));
	config_unref(cfg);
	return 0;
}
