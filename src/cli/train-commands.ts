// Placeholder until the training pipeline lands: registers nothing yet.
import type { Command } from 'commander';

export function registerTrainCommands(_program: Command): void {}
