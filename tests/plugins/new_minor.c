/* new_minor.c — a plugin that says it was built against a minor newer than this hone's
 * (its hone_plugin_abi is written out by hand, as a future header's macro would make it).
 * The version rule refuses it at load, naming the file and both versions, before its
 * init could call a host function this hone does not have. */
#include "hone/plugin.h"

HONE_EXPORT const uint32_t hone_plugin_abi[2] = {HONE_ABI_MAJOR, HONE_ABI_MINOR + 1};

HONE_EXPORT int hone_plugin_init(const hone_host *host, hone_registry *reg, hone_err *err)
{
    (void)reg;
    return host->error(err, HONE_ESTATE, "new_minor's init ran: the loader should have refused it");
}
