#!/usr/bin/env node
// drove's SSH keeper (src/ssh/keeper.ts), started by a provider when DROVE_SSH_PERSIST is set.
"use strict";
require("./launch").launch("src/ssh/keeper-main");
