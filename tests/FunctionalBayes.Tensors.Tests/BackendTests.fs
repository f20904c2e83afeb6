/// A backend plugs in behind IBackend: a "device" that mirrors the CPU and counts what it runs.
module FunctionalBayes.Tensors.Tests.BackendTests

open System.Threading
open Expecto
open FunctionalBayes.TestAssertions
open FunctionalBayes.Tensors
open FunctionalBayes.Tensors.Tests.TestUtil

type private MirrorBuffer(host: RawTensor, backend: IBackend) =
    inherit DeviceBuffer()
    member _.Host = host
    override _.Backend = backend
    override _.Dtype = host.Dtype
    override _.Length = host.Size
    override _.ToHost() = host.Storage

type private MirrorBackend() as this =
    let mutable count = 0
    member _.Count = count
    member _.Upload(r: RawTensor) = RawTensor(r.Shape, Device (MirrorBuffer(r, this)))
    interface IBackend with
        member _.Name = "mirror"
        member _.Execute(op, xs, outShape, _) =
            Interlocked.Increment(&count) |> ignore
            let host = xs |> Array.map (fun x ->
                match x.Storage with
                | Device (:? MirrorBuffer as m) -> m.Host
                | _ -> x)
            this.Upload(Cpu.execute op host outShape)

let ``ops and gradients run on a plugged-in backend`` () =
    let dev = MirrorBackend()
    let xs = randomTensor 1 [| 4; 3 |] -1.0 1.0
    let w = randomTensor 2 [| 3 |] -1.0 1.0
    let onDevice (t: Tensor) =
        Tensor.ofRaw (dev.Upload(RawTensor(t.Shape, F64 (Tensor.toArray t))))
    let f (x: Tensor) (w: Tensor) = Tensor.sum (Tensor.tanh (Tensor.matmul x w))
    let vCpu, gCpu = Autodiff.valueAndGrad (f xs) w
    let vDev, gDev = Autodiff.valueAndGrad (f (onDevice xs)) (onDevice w)
    Assert.True(dev.Count > 0)
    Assert.True(match gDev.Storage with
                | Device _ -> true
                | _ -> false)
    assertTensorClose 1e-15 vCpu vDev
    assertTensorClose 1e-15 gCpu gDev

[<Tests>]
let tests =
    testList "BackendTests" [
        testCase "ops and gradients run on a plugged-in backend" ``ops and gradients run on a plugged-in backend``
    ]
