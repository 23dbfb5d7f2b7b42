;; Asks for the first preopened directory (fd 3), writes that errno as one
;; byte to stdout, then tries to open /etc/passwd through fd 3 and exits with
;; the errno of path_open.
(module
  (import "wasi_snapshot_preview1" "fd_prestat_get" (func $prestat (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open"
    (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 256) "/etc/passwd")
  (func (export "_start")
    (i32.store8 (i32.const 100) (call $prestat (i32.const 3) (i32.const 200)))
    (i32.store (i32.const 0) (i32.const 100))
    (i32.store (i32.const 4) (i32.const 1))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    (call $exit
      (call $open (i32.const 3) (i32.const 0) (i32.const 256) (i32.const 11)
        (i32.const 0) (i64.const -1) (i64.const -1) (i32.const 0) (i32.const 300)))))
