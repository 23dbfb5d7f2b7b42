;; Grows memory by 1 MiB at a time, forever. Exits 99 if a grow ever fails
;; quietly instead of ending the run.
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (loop $grow
      (if (i32.eq (memory.grow (i32.const 16)) (i32.const -1))
        (then (call $exit (i32.const 99))))
      (br $grow))))
