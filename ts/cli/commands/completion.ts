/**
 * `st-native completion bash|zsh`: a tab-completion script generated from
 * the command tree itself (commands, subcommands, options, and the values
 * of options with a known set: presets, models, devices, attacks, files),
 * so that it never drifts from what the parser accepts.
 */
import { Command, type CommandUnknownOpts, type Option } from '@commander-js/extra-typings';
import { presets } from '../../config/presets.js';
import { runConfigSchema } from '../../config/schema.js';
import { datasets } from '../../data/index.js';
import type { CliContext } from '../context.js';
import { EXIT } from '../errors.js';

/** Attack names offered after --attacks (parametrised ones with their common settings). */
const ATTACKS = ['clean', 'run', 'fgsm', 'pgd20', 'pgd100', 'cw', 'aa', 'aa-rand', 'apgd-ce', 'apgd-t', 'apgd-dlr', 'fab-t', 'square', 'fgsm-l2', 'pgd20-l2', 'aa-l2'] as const;

/** What completes after an option: a word list, files, folders, a comma list, or nothing known. */
type ValueKind = { words: readonly string[]; commaList?: boolean } | 'file' | 'dir' | 'any';

function valueKind(commandPath: string, option: Option): ValueKind | null {
  if (!option.required && !option.optional) return null;
  if (option.argChoices) return { words: option.argChoices };
  switch (option.long) {
    case '--preset':
      return { words: presets.map((p) => p.name) };
    case '--device':
      return { words: ['auto', 'cpu', 'cuda'] };
    case '--model':
      return { words: runConfigSchema.shape.model.options };
    case '--dataset':
      return { words: datasets.map((d) => d.name) };
    case '--attacks':
      return { words: ATTACKS, commaList: true };
    case '--config':
    case '--save-adversarial':
      return 'file';
    case '--runs-dir':
    case '--data-dir':
    case '--resume':
      return 'dir';
    default:
      return commandPath === '' ? null : 'any';
  }
}

interface Node {
  path: string;
  command: Command;
}

function nodes(command: Command, prefix = ''): Node[] {
  return [{ path: prefix, command }, ...command.commands.flatMap((c) => nodes(c as Command, prefix ? `${prefix} ${c.name()}` : c.name()))];
}

const quote = (words: readonly string[]) => words.join(' ');

/** The bash script; zsh runs it through bashcompinit. */
export function bashCompletion(program: Command): string {
  const all = nodes(program);
  const subs = all.map(({ path, command }) => `    "${path}") echo "${quote(command.commands.map((c) => c.name()).concat(path === '' ? ['help'] : []))}" ;;`);
  const opts = all.map(({ path, command }) => {
    const flags = command.options.flatMap((o) => [o.long, o.short].filter((f): f is string => Boolean(f)));
    return `    "${path}") echo "${quote([...flags, '--help'])}" ;;`;
  });
  const values = all.flatMap(({ path, command }) =>
    command.options.flatMap((o) => {
      const kind = valueKind(path, o);
      if (kind === null || !o.long) return [];
      const text = typeof kind === 'string' ? `@${kind}` : `${kind.commaList ? '@csv ' : ''}${quote(kind.words)}`;
      return [`    "${path}|${o.long}") echo "${text}" ;;`];
    }),
  );
  return `# st-native tab completion for bash (generated from the command tree by
# \`st-native completion bash\`). Load it with:
#   source <(st-native completion bash)
_st_native_subcommands() {
  case "$1" in
${subs.join('\n')}
  esac
}
_st_native_options() {
  case "$1" in
${opts.join('\n')}
  esac
}
_st_native_values() {
  case "$1|$2" in
${values.join('\n')}
  esac
}
_st_native_complete() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="\${COMP_WORDS[COMP_CWORD-1]}"
  local path="" word i
  for ((i = 1; i < COMP_CWORD; i++)); do
    word="\${COMP_WORDS[i]}"
    case "$word" in -*) continue ;; esac
    # The value of an option is not a command.
    [[ -n "$(_st_native_values "$path" "\${COMP_WORDS[i-1]}")" ]] && continue
    if [[ " $(_st_native_subcommands "$path") " == *" $word "* ]]; then path="\${path:+$path }$word"; fi
  done
  local values
  values="$(_st_native_values "$path" "$prev")"
  if [[ -n "$values" ]]; then
    case "$values" in
      @file) COMPREPLY=($(compgen -f -- "$cur")) ;;
      @dir) COMPREPLY=($(compgen -d -- "$cur")) ;;
      @any) COMPREPLY=() ;;
      "@csv "*)
        local head=""
        [[ "$cur" == *,* ]] && head="\${cur%,*},"
        COMPREPLY=($(compgen -P "$head" -W "\${values#@csv }" -- "\${cur##*,}"))
        compopt -o nospace 2>/dev/null ;;
      *) COMPREPLY=($(compgen -W "$values" -- "$cur")) ;;
    esac
    return 0
  fi
  if [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "$(_st_native_options "$path")" -- "$cur"))
  else
    COMPREPLY=($(compgen -W "$(_st_native_subcommands "$path")" -- "$cur"))
    # eval's target is a run folder or a checkpoint file.
    [[ "$path" == "eval" ]] && COMPREPLY+=($(compgen -f -- "$cur"))
  fi
  return 0
}
complete -o default -F _st_native_complete st-native
`;
}

export function completionProgram(ctx: CliContext): CommandUnknownOpts {
  return new Command('completion')
    .description('print a tab-completion script for bash or zsh')
    .argument('[shell]', 'bash or zsh', 'bash')
    .addHelpText('after', '\nLoad it in this shell, or in every new one:\n\nExamples:\n  $ source <(st-native completion bash)\n  $ st-native completion bash >> ~/.bashrc\n  $ st-native completion zsh >> ~/.zshrc')
    .action((shell, _options, command) => {
      const program = command.parent as Command;
      if (shell !== 'bash' && shell !== 'zsh') return command.error(`error: unknown shell "${shell}"; expected bash or zsh`, { code: 'st-native.shell', exitCode: EXIT.usage });
      const script = bashCompletion(program);
      ctx.io.out(shell === 'zsh' ? `autoload -U +X bashcompinit && bashcompinit\n${script}` : script);
      ctx.exit(EXIT.ok);
    });
}
