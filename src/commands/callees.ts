import { treeCommand } from './callers.js';

export const calleesCommand = treeCommand('callees');
