#!/usr/bin/env bash
# The GPU check: one run of at most 8 minutes on a CUDA machine whose python has torch and Lightning.
#
#   bash benchmarks/gpu_check.sh            # on the GPU machine, from the repository root
#   GPU_CHECK_DRY=1 PYTHON=.venv/bin/python bash benchmarks/gpu_check.sh   # tiny, on the CPU (a rehearsal)
#
# Packages the machine lacks travel as wheels in .whl/ (hydra-core, omegaconf, antlr4-python3-runtime: see
# docs/speed.md); the project itself runs from src/ without being installed. Steps, each bounded in time, each
# log under $OUT (or outputs/gpu_check/): the CUDA-graph tests marked gpu, then the other gpu tests; a short
# `train trainer=gpu` run graphed (module.cuda_graphs=true) and the same eager, then `eval` and `sample` on each
# checkpoint; the same with bf16-mixed and model.compile=true; benchmarks/throughput.py --device cuda, eager and
# compiled, at batch 32 and 256 (each also times the step replayed as CUDA graphs: graphed_speedup_vs_eager,
# graphed_time_vs_cudnn_gru); the default training run, graphed, with the time left (its wall time and best
# validation figure in the table); the graphed and eager runs' final figures compared (benchmarks/compare_runs.py).
# One table last. A pass on a card is what lets `module.cuda_graphs=auto` mean graphs again
# (training/cuda_graphs.py, CHECKED_ON).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-outputs/gpu_check}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 HYDRA_FULL_ERROR=1
python=${PYTHON:-python3}   # the interpreter that has torch and Lightning

if compgen -G ".whl/*.whl" >/dev/null; then
    "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        || { echo "could not install the carried wheels" >&2; exit 1; }
    export PYTHONPATH=/tmp/site:$PWD/src:$PWD
else
    export PYTHONPATH=$PWD/src:$PWD${PYTHONPATH:+:$PYTHONPATH}
fi

if [[ -n "${GPU_CHECK_DRY:-}" ]]; then   # the rehearsal: every step, tiny, on the CPU
    trainer=cpu; steps=6; bench_repeats=2; batches="8"; modes="false"
    tiny="model.h_dim=16 model.z_dim=4 model.x_feat_dim=8 model.z_feat_dim=8 model.hidden_dim=16 data.seq_len=16
          data.batch_size=4 data.batches_per_epoch=3 trainer.limit_val_batches=2 trainer.limit_test_batches=2"
    variants=("fp32:" "eager:module.cuda_graphs=false" "compiled:model.compile=true")   # fp32 is eager here too
    bench_extra="--seq-len 16 --memory-windows 16"
else
    trainer=gpu; steps=300; bench_repeats=15; batches="32 256"; modes="false true"
    tiny=""
    # fp32 opts in to graphs (module.cuda_graphs=true: auto runs eager until this check has passed on a card);
    # eager is the same run without them
    variants=("fp32:module.cuda_graphs=true" "eager:module.cuda_graphs=false" "bf16:trainer.precision=bf16-mixed"
              "compiled:model.compile=true")
    bench_extra="--memory-windows 128"
fi

"$python" - <<'EOF' | tee "$out/device.txt"
import torch, lightning
print(f"torch {torch.__version__}, lightning {lightning.__version__}, cuda {torch.version.cuda}")
print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA device")
EOF

summary="$out/summary.md"
echo "| step | status | wall s | figure |" >"$summary"
echo "| --- | --- | --- | --- |" >>"$summary"

budget=${GPU_CHECK_BUDGET_S:-450}   # steps that would start later are skipped, so the whole check ends in time
run_step() {  # name, time limit in seconds, command...
    local name=$1 limit=$2
    shift 2
    if ((SECONDS + 10 > budget)); then
        echo "| $name | skipped: the check's $budget s were spent | 0 | |" >>"$summary"
        return
    fi
    ((SECONDS + limit > budget)) && limit=$((budget - SECONDS))
    local start=$SECONDS
    timeout "$limit" "$@" >"$out/$name.log" 2>&1
    local status=$?
    local figure
    figure=$(grep -hoE "(max_abs_diff|best_val_loss|wall_s|elbo_bound_nats_per_char|iw_bound_nats_per_char|speedup_vs_per_step|flop_efficiency_vs_fused_gru|graphed_speedup_vs_eager|graphed_time_vs_cudnn_gru): +[0-9.]+|vrnn: +[0-9]+ chars/s|passed|failed|skipped" "$out/$name.log" | sort -u | tr '\n' ' ')
    echo "| $name | $([[ $status == 0 ]] && echo ok || echo "exit $status") | $((SECONDS - start)) | $figure |" >>"$summary"
    echo "== $name: exit $status in $((SECONDS - start)) s"
}

# The graph tests first, as their own step: they decide whether the figures below mean anything
run_step gpu_graph_tests 180 "$python" -m pytest -q -m gpu tests/test_gpu.py -k "graph" -p no:cacheprovider
run_step gpu_tests 150 "$python" -m pytest -q -m gpu tests/test_gpu.py -k "not graph" -p no:cacheprovider

for variant in "${variants[@]}"; do
    name=${variant%%:*}
    override=${variant#*:}
    run="$out/runs/$name"
    # shellcheck disable=SC2086  # the override lists are word lists on purpose
    run_step "train_$name" 200 "$python" -m vrnn_lightning.train trainer=$trainer trainer.max_steps=$steps \
        trainer.check_val_every_n_epoch=1 data.batches_per_epoch=$((steps / 2 > 3 ? steps / 2 : 3)) \
        callbacks.progress_bar=null $tiny $override "hydra.run.dir=$run"
    if [[ -f "$run/checkpoints/last.ckpt" ]]; then
        run_step "eval_$name" 60 "$python" -m vrnn_lightning.eval "ckpt_path=$run/checkpoints/last.ckpt" \
            eval.iw_samples=8 "hydra.run.dir=$out/runs/eval_$name"
        run_step "sample_$name" 30 "$python" -m vrnn_lightning.sample "ckpt_path=$run/checkpoints/last.ckpt" \
            prompt=ROMEO: length=300 "hydra.run.dir=$out/runs/sample_$name"
    fi
done

device=$([[ -n "${GPU_CHECK_DRY:-}" ]] && echo cpu || echo cuda)
for batch in $batches; do
    for mode in $modes; do
        # shellcheck disable=SC2086
        run_step "throughput_b${batch}_$mode" 120 "$python" benchmarks/throughput.py --device "$device" \
            --batch-size "$batch" --compile "$mode" --repeats "$bench_repeats" $bench_extra \
            --json "$out/throughput_b${batch}_$mode.json"
    done
done

# The default Tiny Shakespeare run on the GPU, graphed (what auto becomes once this check passes), with the time
# left (the goal: the 14-minute CPU run's validation bound in under 2 minutes); a run that does not finish still
# logs its progress.
if [[ -z "${GPU_CHECK_DRY:-}" ]]; then
    run_step default_run 240 "$python" -m vrnn_lightning.train trainer=gpu callbacks.progress_bar=null \
        module.cuda_graphs=true "hydra.run.dir=$out/runs/default"
fi
# The graphed and the eager 300-step runs of one seed, their final val/* and test/* side by side (goal: 1e-4)
run_step graphed_vs_eager 30 "$python" benchmarks/compare_runs.py "$out/runs/fp32" "$out/runs/eager" --tolerance 1e-4

echo
cat "$summary"
