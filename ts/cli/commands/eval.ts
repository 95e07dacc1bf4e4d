/** `st-native eval`: its options and help; the work is in ../eval.ts. */
import { Command, Option, type CommandUnknownOpts } from '@commander-js/extra-typings';
import type { CliContext } from '../context.js';
import { evalCommand } from '../eval.js';
import { RUN_CHECKPOINTS } from '../../experiment/run-checkpoints.js';
import { collect, valuesByFlag } from './option-values.js';

const ATTACK_HELP = `
Attacks (white-box), for --attacks, in order:
  clean    no attack
  run      the run's own per-epoch evaluation (its eval settings, seed and
           batches): reproduces the accuracy it logged
  fgsm     one step of eps, no random start
  pgdN     N steps with a uniform random start (pgd20, pgd100)
  cw, cwN  PGD on the Carlini-Wagner margin (cw = 100 steps)
  ...xR    R restarts, per point the strongest (pgd20x5)
  ...-l2   the L2 threat model (fgsm-l2, pgd20-l2, aa-l2)
  aa       AutoAttack, standard version: APGD-CE, APGD-T, FAB-T and Square in
           turn, each on the images still robust; prints the accuracy after
           each; an interrupted one resumes where it stopped
  aa-rand  AutoAttack for randomised models (APGD-CE, APGD-DLR, 20 gradients
           averaged per step)
  apgd-ce, apgd-t, apgd-dlr, fab-t, square
           one AutoAttack component alone, its standard settings

Every result records the seed, each attack's settings and batch size, the
number of images, the checkpoint's CRC-32 and where it ran; results go to
eval-history/ in the run folder (or beside the file), never overwriting an
earlier one. Ctrl-C stops (exit 130) and writes nothing.

Examples:
  $ st-native eval runs/my-run
  $ st-native eval runs/my-run --attacks aa --n 1000
  $ st-native eval model.safetensors --model resnet18 \\
      --classes 10 --attacks clean,pgd20x5 \\
      --normalize 0.4914,0.4822,0.4465/0.2471,0.2435,0.2616

Exit codes: 0 done, 1 failed, 2 usage, 130 Ctrl-C, 143 SIGTERM, 141 stdout closed.`;

export function evalProgram(ctx: CliContext): CommandUnknownOpts {
  const command = new Command('eval')
    .description('the attack table (FGSM, PGD, CW-inf, AutoAttack, worst case) of a run or any checkpoint')
    .usage('<runDir|file> [options]')
    .argument('<target>', 'a run folder (its model, dataset and evaluation settings), or a checkpoint file of a registered model: ours, or a PyTorch state dict saved with safetensors')
    .addOption(new Option('--checkpoint <which>', "a run folder's checkpoint").choices([...RUN_CHECKPOINTS]).default('best', 'best'))
    .option('--attacks <list>', 'comma-separated, in order (default: clean,run,fgsm,pgd20,pgd100,cw for a run folder, clean,fgsm,pgd20,pgd100,cw for a file)')
    .option('--eps <e>', 'L-inf radius, e.g. 8/255 or 0.3 (default 8/255 for CIFAR/SVHN; for the digits the run\'s radius, else 0.3)')
    .option('--step <s>', "step size (default 2/255, or the run's; scales with --eps)")
    .option('--eps-l2 <e>', 'L2 radius of the -l2 attacks (default 0.5; 2 for the digits)')
    .option('--final-iterate', "score each attack's last iterate (as the reference code and torchattacks do) instead of the strongest input seen")
    .option('--seed <s>', 'seeds every random start (default 0)')
    .option('--n <n>', "the first N test images (default: the run's own count, else all)")
    .option('--batch <b>', 'images per batch (halved with a notice when out of memory)')
    .option('--model <name>', 'a file\'s architecture (a file of ours says it; see `st-native models`)')
    .option('--classes <k>', "a file's class count (a file of ours says it)")
    .option('--dataset <name>', 'mnist-embedded | cifar10 | cifar100 | svhn (inferred when only one fits the model)')
    .option('--data-dir <dir>', 'where downloaded datasets are')
    .option('--normalize <mean/std>', "per-channel normalisation the model expects, as comma lists MEAN/STD (one value, or one per channel), folded in front of the model so that inputs stay in [0,1]; CIFAR-10's in the examples")
    .option('--set <eval.key=value>', "override the run's evaluation settings (the run attack; repeatable)", collect)
    .option('--save-adversarial <file>', 'write the adversarial inputs (float32, exactly as scored) and labels to this safetensors file')
    .option('--no-write', "write no result files (by default eval-history/ beside the run's checkpoints or the file)")
    .option('--no-resume', 'start AutoAttacks over instead of continuing an interrupted one from its saved state')
    .option('--device <device>', 'auto | cpu | cuda')
    .option('--json', 'print the result as one JSON object on stdout; progress as JSON lines on stderr')
    .addHelpText('after', ATTACK_HELP);
  return command.action(async (target) => {
    const values = valuesByFlag(command);
    // --checkpoint has a default only for the help; a file takes none.
    if (command.getOptionValueSource('checkpoint') === 'default') delete values.checkpoint;
    ctx.exit(await evalCommand(values, [target], ctx.io));
  });
}
