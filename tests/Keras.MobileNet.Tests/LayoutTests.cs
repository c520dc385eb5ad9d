using System.Reflection;
using System.Reflection.Emit;

namespace Keras.MobileNet.Tests;

/// <summary>The newcomer's map holds: folders depend one way, no source file is long, the README's table names the folders.</summary>
public class LayoutTests
{
    static readonly Dictionary<short, OpCode> OpCodesByValue = typeof(OpCodes).GetFields(BindingFlags.Public | BindingFlags.Static)
        .Select(f => (OpCode)f.GetValue(null)!).ToDictionary(o => o.Value);

    /// <summary>The folder (second namespace segment below Keras.MobileNet) of a type, or null outside the library.</summary>
    static string? Folder(Type t)
    {
        while (t.DeclaringType is not null) t = t.DeclaringType;
        var parts = (t.Namespace ?? "").Split('.');
        return parts.Length >= 3 && parts[0] == "Keras" && parts[1] == "MobileNet" ? parts[2] : null;
    }

    static IEnumerable<Type> Expand(Type? t)
    {
        if (t is null) yield break;
        if (t.HasElementType) { foreach (var e in Expand(t.GetElementType())) yield return e; yield break; }
        yield return t;
        if (t.IsGenericType && !t.IsGenericTypeDefinition)
            foreach (var a in t.GetGenericArguments()) foreach (var e in Expand(a)) yield return e;
    }

    /// <summary>Every type a type uses: base, interfaces, fields, signatures, and the members its method bodies touch.</summary>
    static IEnumerable<Type> Uses(Type type)
    {
        const BindingFlags all = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;
        var found = new List<Type?> { type.BaseType };
        found.AddRange(type.GetInterfaces());
        found.AddRange(type.GetFields(all).Select(f => f.FieldType));
        found.AddRange(type.GetProperties(all).Select(p => p.PropertyType));
        var bodies = type.GetMethods(all).Cast<MethodBase>().Concat(type.GetConstructors(all));
        foreach (var m in bodies)
        {
            if (m is MethodInfo mi) found.Add(mi.ReturnType);
            found.AddRange(m.GetParameters().Select(p => p.ParameterType));
            byte[]? il;
            try { il = m.GetMethodBody()?.GetILAsByteArray(); } catch (Exception) { il = null; }
            if (il is null) continue;
            var typeArgs = type.IsGenericType ? type.GetGenericArguments() : null;
            var methodArgs = m.IsGenericMethod ? m.GetGenericArguments() : null;
            for (int i = 0; i < il.Length;)
            {
                short value = il[i] == 0xFE ? (short)(0xFE00 | il[i + 1]) : il[i];
                i += il[i] == 0xFE ? 2 : 1;
                var op = OpCodesByValue[value];
                int size = op.OperandType switch
                {
                    OperandType.InlineNone => 0,
                    OperandType.ShortInlineBrTarget or OperandType.ShortInlineI or OperandType.ShortInlineVar => 1,
                    OperandType.InlineVar => 2,
                    OperandType.InlineI8 or OperandType.InlineR => 8,
                    OperandType.InlineSwitch => 4 + 4 * BitConverter.ToInt32(il, i),
                    _ => 4,
                };
                if (op.OperandType is OperandType.InlineField or OperandType.InlineMethod or OperandType.InlineType or OperandType.InlineTok)
                {
                    try
                    {
                        var member = type.Module.ResolveMember(BitConverter.ToInt32(il, i), typeArgs, methodArgs);
                        found.Add(member as Type ?? member?.DeclaringType);
                        if (member is MethodInfo called) found.Add(called.ReturnType);
                        if (member is FieldInfo field) found.Add(field.FieldType);
                    }
                    catch (ArgumentException) { }
                }
                i += size;
            }
        }
        return found.SelectMany(Expand);
    }

    /// <summary>Folder -> the folders its types use.</summary>
    static Dictionary<string, SortedSet<string>> Edges()
    {
        var edges = new Dictionary<string, SortedSet<string>>();
        foreach (var t in typeof(Runs.RunFolder).Assembly.GetTypes())
        {
            if (Folder(t) is not string from) continue;
            var to = edges.TryGetValue(from, out var set) ? set : edges[from] = [];
            foreach (var u in Uses(t)) if (Folder(u) is string f && f != from) to.Add(f);
        }
        return edges;
    }

    [Test]
    public void No_folder_uses_a_folder_that_uses_it_back()
    {
        var edges = Edges();
        // Any cycle, not only pairs: a depth-first search over the folder graph.
        var state = new Dictionary<string, int>();
        var path = new List<string>();
        List<string>? cycle = null;
        void Visit(string n)
        {
            if (cycle is not null) return;
            state[n] = 1;
            path.Add(n);
            foreach (var m in edges.GetValueOrDefault(n) ?? [])
                if (state.GetValueOrDefault(m) == 1) { cycle = [.. path.SkipWhile(p => p != m), m]; return; }
                else if (state.GetValueOrDefault(m) == 0) Visit(m);
            path.RemoveAt(path.Count - 1);
            state[n] = 2;
        }
        foreach (var n in edges.Keys.Order()) if (state.GetValueOrDefault(n) == 0) Visit(n);
        string map = string.Join("; ", edges.OrderBy(e => e.Key).Select(e => $"{e.Key} -> {string.Join(", ", e.Value)}"));
        Assert.That(cycle, Is.Null, $"cycle {string.Join(" -> ", cycle ?? [])}; the map: {map}");
        TestContext.Out.WriteLine(map);
    }

    /// <summary>
    /// The folders of the library in layers: each may use only the folders listed (the pure core at the bottom, runs and
    /// training above it). The shell (console, signals, options, scheduler files) is src/Train, another assembly.
    /// </summary>
    static readonly Dictionary<string, string[]> Allowed = new()
    {
        ["Architecture"] = [],
        ["Backend"] = [],
        ["Model"] = ["Architecture", "Backend"],
        ["Data"] = ["Backend"],
        ["Downloads"] = ["Backend"],
        ["Config"] = ["Architecture", "Backend", "Data", "Downloads", "Model"],
        ["Runs"] = ["Architecture", "Backend", "Config", "Data", "Model"],
        ["Export"] = ["Architecture", "Backend", "Data", "Model", "Runs"],
        ["Reports"] = ["Architecture", "Backend", "Runs"],
        ["Optim"] = ["Runs"],
        ["Engine"] = ["Backend", "Data", "Export", "Model", "Optim", "Runs"],
        ["Sweeps"] = ["Backend"],
        ["Weights"] = ["Architecture", "Backend", "Data", "Downloads", "Model", "Runs"],
        ["Training"] = ["Architecture", "Backend", "Config", "Data", "Downloads", "Engine", "Export", "Model", "Optim", "Runs", "Sweeps", "Weights"],
        ["Inference"] = ["Backend", "Data", "Engine", "Export", "Model", "Runs", "Training"],
    };

    [Test]
    public void Every_folder_uses_only_the_folders_its_layer_allows()
    {
        var edges = Edges();
        Assert.That(edges.Keys.Where(k => !Allowed.ContainsKey(k)), Is.Empty, "a folder with no row in the allowed-dependency table");
        var wrong = edges.SelectMany(e => e.Value.Where(to => !Allowed[e.Key].Contains(to)).Select(to => $"{e.Key} -> {to}")).ToList();
        Assert.That(wrong, Is.Empty, "uses the table does not allow");
    }

    [Test]
    public void The_core_references_no_shell_package_and_the_architecture_no_tensor_library()
    {
        var referenced = typeof(Runs.RunFolder).Assembly.GetReferencedAssemblies().Select(a => a.Name).ToList();
        Assert.That(referenced, Has.None.StartsWith("Spectre").And.None.StartsWith("System.CommandLine").And.None.EqualTo("Train"));
        var architecture = typeof(Runs.RunFolder).Assembly.GetTypes().Where(t => Folder(t) == "Architecture");
        var torch = architecture.SelectMany(t => Uses(t).Where(u => u.Assembly.GetName().Name?.StartsWith("TorchSharp") == true).Select(u => $"{t.Name} uses {u.Name}")).ToList();
        Assert.That(torch, Is.Empty, "Architecture is the pure core: specs and arithmetic, no tensors");
    }

    [Test]
    public void The_reading_of_uses_sees_a_dependency_in_a_method_body()
    {
        // Runner only calls into Runs from method bodies (RunReader.Completed); the IL reading must see it, or the cycle test proves nothing.
        Assert.That(Edges()["Training"], Does.Contain("Runs").And.Contain("Data").And.Contain("Backend"));
        Assert.That(Edges()["Reports"], Does.Contain("Runs").And.Not.Contain("Training"));
    }

    [Test]
    public void No_source_file_is_over_250_lines()
    {
        var src = Path.Combine(Setup.RepoRoot(), "src");
        var longFiles = Directory.GetFiles(src, "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}") && !f.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}"))
            .Select(f => (File: Path.GetRelativePath(src, f), Lines: File.ReadLines(f).Count())).Where(x => x.Lines > 250).ToList();
        Assert.That(longFiles, Is.Empty);
    }

    [Test]
    public void The_readme_layout_table_names_every_source_folder()
    {
        string readme = File.ReadAllText(Path.Combine(Setup.RepoRoot(), "README.md"));
        var lib = Path.Combine(Setup.RepoRoot(), "src", "Keras.MobileNet");
        var folders = Directory.GetDirectories(lib).Select(Path.GetFileName).Where(n => n is not ("bin" or "obj")).ToList();
        Assert.That(folders.Where(f => !readme.Contains($"`src/Keras.MobileNet/{f}`")), Is.Empty, "folders the README's layout table does not name");
        var named = System.Text.RegularExpressions.Regex.Matches(readme, @"`src/Keras\.MobileNet/(\w+)`").Select(m => m.Groups[1].Value).Distinct();
        Assert.That(named.Where(n => !folders.Contains(n)), Is.Empty, "folders the README names that do not exist");
    }
}
