// Sets MethodImplAttributes.AggressiveOptimization (0x0200) on every method that [<OptimizeFromFirstCall>] covers
// in a compiled assembly: the assembly itself, a type (with its nested closure types) or a method carrying the
// attribute. F# drops that MethodImpl flag from source, so the build (Directory.Build.targets) runs this after
// compilation. Only the ImplFlags column of MethodDef rows changes; idempotent.
open System.IO
open System.Reflection.Metadata
open System.Reflection.Metadata.Ecma335
open System.Reflection.PortableExecutable

let marker = "OptimizeFromFirstCallAttribute"
let aggressiveOptimization = 0x0200us
let path = fsi.CommandLineArgs.[1]
let bytes = File.ReadAllBytes path

let offsets =
    use pe = new PEReader(new MemoryStream(bytes))
    let md = pe.GetMetadataReader()
    let attributeName (h: CustomAttributeHandle) =
        let ctor = md.GetCustomAttribute(h).Constructor
        match ctor.Kind with
        | HandleKind.MethodDefinition ->
            Some (md.GetTypeDefinition(md.GetMethodDefinition(MethodDefinitionHandle.op_Explicit ctor).GetDeclaringType()).Name)
        | HandleKind.MemberReference ->
            let parent = md.GetMemberReference(MemberReferenceHandle.op_Explicit ctor).Parent
            match parent.Kind with
            | HandleKind.TypeReference -> Some (md.GetTypeReference(TypeReferenceHandle.op_Explicit parent).Name)
            | HandleKind.TypeDefinition -> Some (md.GetTypeDefinition(TypeDefinitionHandle.op_Explicit parent).Name)
            | _ -> None
        | _ -> None
    let marked (attrs: CustomAttributeHandleCollection) =
        attrs |> Seq.exists (fun h -> attributeName h |> Option.exists (fun n -> md.GetString n = marker))
    let all = md.IsAssembly && marked (md.GetAssemblyDefinition().GetCustomAttributes())
    let rec typeMarked (t: TypeDefinitionHandle) =
        not t.IsNil && (marked (md.GetTypeDefinition(t).GetCustomAttributes()) || typeMarked (md.GetTypeDefinition(t).GetDeclaringType()))
    let table = pe.PEHeaders.MetadataStartOffset + md.GetTableMetadataOffset TableIndex.MethodDef
    let row = md.GetTableRowSize TableIndex.MethodDef
    [ for th in md.TypeDefinitions do
        let whole = all || typeMarked th
        for mh in md.GetTypeDefinition(th).GetMethods() do
            let m = md.GetMethodDefinition mh
            if m.RelativeVirtualAddress <> 0 && (whole || marked (m.GetCustomAttributes())) then
                // a MethodDef row starts with its RVA (4 bytes), then ImplFlags (2 bytes)
                yield table + row * (MetadataTokens.GetRowNumber mh - 1) + 4 ]

let mutable changed = 0
for o in offsets do
    let flags = uint16 bytes.[o] ||| (uint16 bytes.[o + 1] <<< 8)
    if flags &&& aggressiveOptimization = 0us then
        let f = flags ||| aggressiveOptimization
        bytes.[o] <- byte f
        bytes.[o + 1] <- byte (f >>> 8)
        changed <- changed + 1
if changed > 0 then File.WriteAllBytes(path, bytes)
printfn "OptimizeFromFirstCall: %d methods in %s (%d newly flagged)" offsets.Length (Path.GetFileName path) changed
