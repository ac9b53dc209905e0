/* placeholder */
#include "redis.h"
const struct cmd list_cmds[] = {{NULL, 0, 0, false, 0, 0, NULL, NULL}};
const struct cmd hash_cmds[] = {{NULL, 0, 0, false, 0, 0, NULL, NULL}};
const struct cmd set_cmds[] = {{NULL, 0, 0, false, 0, 0, NULL, NULL}};
const struct cmd zset_cmds[] = {{NULL, 0, 0, false, 0, 0, NULL, NULL}};
