;; echo: a WASI preview 1 command that copies all of standard input to
;; standard output, then exits with status 0.
;;
;; Exit status 1 means fd_read failed, 2 means fd_write failed or wrote
;; nothing. Only three imports are used, so a host that grants nothing else
;; (no files, no clock, no environment) can run it.
;;
;; Assembled by scripts/make-example-bundle.sh with wabt.js into
;; examples/bundle/local-compute/runners/echo.wasm.
(module
  (import "wasi_snapshot_preview1" "fd_read"
    (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit"
    (func $proc_exit (param i32)))

  ;; One 64 KiB page. Layout (byte offsets):
  ;;   0..8     iovec for fd_read: buffer pointer, buffer length
  ;;   8..16    ciovec for fd_write: data pointer, data length
  ;;   16..20   number of bytes fd_read stored
  ;;   20..24   number of bytes fd_write wrote
  ;;   1024..   the copy buffer, up to the end of the page
  (memory (export "memory") 1)

  (global $buffer i32 (i32.const 1024))
  (global $buffer_len i32 (i32.const 64512))

  (func $main (export "_start")
    (local $pending i32)

    ;; The read iovec never changes: always fill the whole buffer.
    (i32.store (i32.const 0) (global.get $buffer))
    (i32.store (i32.const 4) (global.get $buffer_len))

    (block $eof
      (loop $read_next
        ;; 1. Read a chunk from fd 0. Zero bytes read means end of input.
        (if (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 16))
          (then (call $proc_exit (i32.const 1))))
        (local.set $pending (i32.load (i32.const 16)))
        (br_if $eof (i32.eqz (local.get $pending)))

        ;; 2. Write the chunk to fd 1, looping because fd_write may write
        ;;    fewer bytes than requested.
        (i32.store (i32.const 8) (global.get $buffer))
        (i32.store (i32.const 12) (local.get $pending))
        (loop $write_rest
          (if (call $fd_write (i32.const 1) (i32.const 8) (i32.const 1) (i32.const 20))
            (then (call $proc_exit (i32.const 2))))
          ;; A write of zero bytes would loop forever, so treat it as a failure.
          (if (i32.eqz (i32.load (i32.const 20)))
            (then (call $proc_exit (i32.const 2))))
          (i32.store (i32.const 8)
            (i32.add (i32.load (i32.const 8)) (i32.load (i32.const 20))))
          (i32.store (i32.const 12)
            (i32.sub (i32.load (i32.const 12)) (i32.load (i32.const 20))))
          (br_if $write_rest (i32.load (i32.const 12))))

        (br $read_next)))

    ;; 3. All input copied.
    (call $proc_exit (i32.const 0))))
